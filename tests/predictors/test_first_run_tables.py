"""`rbridge predict import-table`: a missing column is one line listing every column the table has
(ObsScaling's post-training table: 235 columns, read here with the csv module)."""

from __future__ import annotations

import csv

from rbridge_tasks.cli import main


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
