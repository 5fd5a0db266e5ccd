"""`rbridge predict import-table`: published accuracy tables -> lm-eval-layout results files,
checked cell by cell against the table read independently (csv / yaml modules); values must be
equal exactly. A missing column is one line listing every column the table has (ObsScaling's
post-training table: 235 columns); bad rows and colliding outputs fail before anything is
written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from helpers import run_main

from predictors.data.ingest import load_results
from predictors.data.tables import (
    MetricColumn,
    TableSpec,
    plan_results,
    table_to_results,
    write_results,
)
from rbridge_tasks.cli import main
from rbridge_tasks.core.errors import RBridgeError


def test_obsscaling_rows_become_results_files(data_dir, tmp_path):
    table = data_dir / "obsscaling" / "base_llm_benchmark_eval.csv"
    spec = TableSpec(
        metrics=[
            MetricColumn.parse("GSM8K=gsm8k:exact_match"),
            MetricColumn.parse("HumanEval=humaneval:pass@1"),
        ],
        model_column="Model",
        metadata_columns={"Model Family": "family"},
        where=("Model Family=Qwen*",),
    )
    planned, notes = plan_results([table], spec, tmp_path)
    results = list(planned.values())
    with open(table, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Model Family"].startswith("Qwen")]
    assert len(results) == len(rows) > 0
    write_results(planned)
    paths = list(planned)
    tidy = load_results([tmp_path])
    for row in rows:
        mine = tidy[(tidy["model"] == row["Model"]) & (tidy["task"] == "gsm8k")].iloc[0]
        assert mine["value"] == float(row["GSM8K"])
        assert mine["higher_is_better"] is True and mine["filter"] == "none"
        assert mine["metadata"]["family"] == row["Model Family"]
    record = json.loads(paths[0].read_text())
    assert record["rbridge_import"]["table"] == str(table.resolve())
    assert notes[0].startswith("base_llm_benchmark_eval.csv: ")


def test_empty_cells_are_left_out_and_counted(data_dir):
    table = data_dir / "obsscaling" / "base_llm_benchmark_eval.csv"
    with open(table, newline="", encoding="utf-8") as handle:
        empty = sum(1 for r in csv.DictReader(handle) if not r["HumanEval"])
    assert empty > 0
    results, notes = table_to_results(
        table,
        TableSpec(metrics=[MetricColumn.parse("HumanEval=humaneval:pass@1")], model_column="Model"),
    )
    assert len(results) == 148 - empty
    assert f"{empty} empty cell(s) (not evaluated) left out" in notes[1]


def test_swallow_yaml_nested_fields(data_dir):
    path = data_dir / "swallow_leaderboard" / "model.yml"
    models = yaml.safe_load(path.read_text(encoding="utf-8"))
    with_pre = [m for m in models if "en_pre" in (m.get("results") or {})]
    results, _ = table_to_results(
        path,
        TableSpec(
            metrics=[MetricColumn.parse("results.en_pre.GSM8K=gsm8k:exact_match")],
            model_column="model_id",
            metadata_columns={"family": "family", "params": "params"},
        ),
    )
    assert len(results) == len(with_pre) == 50
    by_model = {r["model_name"]: r for r in results}
    for model in with_pre:
        record = by_model[model["model_id"]]
        assert record["results"]["gsm8k"]["exact_match,none"] == model["results"]["en_pre"]["GSM8K"]
        assert record["configs"]["gsm8k"]["metadata"]["params"] == model["params"]


def test_olmo_ladder_last_checkpoint(data_dir):
    path = data_dir / "olmo_ladder" / "1B-10xC.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        last = list(csv.DictReader(handle))[-1]
    column = "eval/downstream/csqa_val_rc_5shot_len_norm"
    results, _ = table_to_results(
        path,
        TableSpec(
            metrics=[MetricColumn.parse(f"{column}=csqa:acc_norm")],
            revision_column="_step",
            rows="last",
            constants={"recipe": "10xC"},
        ),
    )
    assert len(results) == 1
    record = results[0]
    assert record["model_name"] == "1B-10xC"
    assert record["config"]["model_args"]["revision"] == str(int(float(last["_step"])))
    assert record["results"]["csqa"]["acc_norm,none"] == float(last[column])
    assert record["configs"]["csqa"]["metadata"] == {"recipe": "10xC"}


def test_table_errors_name_the_file_and_column(data_dir, tmp_path):
    table = data_dir / "obsscaling" / "base_llm_benchmark_eval.csv"
    with pytest.raises(
        RBridgeError,
        match=r"base_llm_benchmark_eval\.csv: no column\(s\) "
        r"\['GSM-8K'\]",
    ):
        table_to_results(table, TableSpec(metrics=[MetricColumn.parse("GSM-8K=gsm8k:acc")]))
    with pytest.raises(RBridgeError, match=r"expected COLUMN=TASK:METRIC"):
        MetricColumn.parse("GSM8K")
    with pytest.raises(RBridgeError, match=r"is higher 'score' better\? append :higher"):
        MetricColumn.parse("GSM8K=gsm8k:score")
    assert MetricColumn.parse("a=b=t:loss:lower").column == "a=b"
    bad = tmp_path / "bad.csv"
    bad.write_text("Model,GSM8K\nm1,0.5\nm2,lots\n")
    with pytest.raises(
        RBridgeError,
        match=r"bad\.csv, line 3, field 'GSM8K': value 'lots' is "
        r"not a number",
    ):
        table_to_results(
            bad, TableSpec(metrics=[MetricColumn.parse("GSM8K=gsm8k:acc")], model_column="Model")
        )
    listed = tmp_path / "bad.yml"
    listed.write_text("models: 3\n")
    with pytest.raises(RBridgeError, match="a YAML table must be a list of records"):
        table_to_results(listed, TableSpec(metrics=[MetricColumn.parse("x=t:acc")]))


def test_no_column_error_lists_all_columns(data_dir, tmp_path, capsys):
    table = data_dir / "obsscaling" / "base_llm_post_training_eval.csv"
    with open(table, newline="", encoding="utf-8-sig") as fh:
        columns = next(csv.reader(fh))
    assert len(columns) > 200
    code = main(
        ["predict", "import-table", str(table), "--model-column", "Model", "--metric",
         "NoSuchColumn=gsm8k:exact_match", "--out-dir", str(tmp_path)]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no column(s) ['NoSuchColumn']" in err
    listed = err.split("; columns: ")[1]
    assert all(repr(column) in listed for column in columns)
    assert not any(tmp_path.iterdir())


def table(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Model,GSM8K,Family\n" + "".join(r + "\n" for r in rows))
    return path


IMPORT = ["--metric", "GSM8K=gsm8k:exact_match", "--model-column", "Model"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["a,0.5,x", "b,0.6"], "line 3: 2 cells, but the header has 3"),
        (["a,0.5,x", "b,0.6,x,y"], "line 3: 4 cells, but the header has 3"),
        (["a,0.5,x", "b,inf,x"], "line 3, field 'GSM8K': value inf is not a finite number"),
        (["a,0.5,x", "b,high,x"], "line 3, field 'GSM8K': value 'high' is not a number"),
    ],
)
def test_bad_table_rows_fail_before_anything_is_written(tmp_path, capsys, rows, message):
    good = table(tmp_path / "good.csv", ["c,0.7,x"])
    bad = table(tmp_path / "bad.csv", rows)
    out = tmp_path / "imported"
    code, _, err = run_main(
        capsys, "predict", "import-table", str(good), str(bad), "--out-dir", str(out), *IMPORT
    )
    assert code == 2 and f"{bad}, {message}" in err, err
    assert not out.exists()  # not even the good table's file, nor row 2 of the bad one


def test_tables_whose_outputs_collide_are_refused(tmp_path, capsys):
    first = table(tmp_path / "one" / "scores.csv", ["a,0.5,x"])
    second = table(tmp_path / "two" / "scores.csv", ["a,0.9,x"])
    out = tmp_path / "imported"
    code, _, err = run_main(
        capsys, "predict", "import-table", str(first), str(second), "--out-dir", str(out), *IMPORT
    )
    assert code == 2
    assert f"{second}: would write {out}/a/results_scores_row00000.json, as {first} does" in err
    assert not out.exists()
    code, _, err = run_main(
        capsys, "predict", "import-table", str(first), "--out-dir", str(out), *IMPORT
    )
    assert code == 0, err
    assert json.loads((out / "a" / "results_scores_row00000.json").read_text())["results"] == {
        "gsm8k": {"alias": "gsm8k", "exact_match,none": 0.5}
    }
