"""Ingestion of real lm-eval results (0.4 runs on tiny models, 0.3 Pythia files) and the join.

Every value is compared with the same file read independently with the json module (exact).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from predictors.data.ingest import discover, load_results, read_items, samples_path
from predictors.data.join import (
    Side,
    check_item_means,
    item_matrix,
    join,
    load_manifest,
    select_scores,
)
from rbridge_tasks.core.errors import RBridgeError

PROXY = Side("proxy", "tiny_nll", "answer_nll", where=("role=proxy",))
TARGET = Side("target", "tiny_mc", "acc", where=("role=target",))


def results_files(root: Path) -> list[Path]:
    return sorted(root.rglob("results_*.json"))


def raw(path: Path) -> dict:
    return json.loads(path.read_text())


def copy_run(src: Path, dest: Path) -> Path:
    """A copy of one real run directory (results and samples), to damage in a test."""
    shutil.copytree(src.parent, dest)
    return dest / src.name


def test_tidy_table_equals_the_raw_lm_eval_files(lm_eval_runs):
    files = results_files(lm_eval_runs / "runs")
    assert len(files) == 8
    tidy = load_results([lm_eval_runs / "runs"])
    assert set(tidy["run"]) == {str(f) for f in files}
    for path in files:
        data = raw(path)
        rows = tidy[tidy["run"] == str(path)]
        for task, block in data["results"].items():
            for key, value in block.items():
                if "," not in key or "_stderr," in key:
                    continue
                metric, filt = key.split(",")
                row = rows[
                    (rows["task"] == task) & (rows["metric"] == metric) & (rows["filter"] == filt)
                ].iloc[0]
                assert row["value"] == value
                assert row["stderr"] == block[f"{metric}_stderr,{filt}"]
                assert row["higher_is_better"] is data["higher_is_better"][task][metric]
                assert row["n_samples"] == data["n-samples"][task]["effective"]
                meta = data["configs"][task]["metadata"]
                assert {k: row["metadata"][k] for k in ("recipe", "role", "corpus")} == {
                    k: meta[k] for k in ("recipe", "role", "corpus")
                }
                assert row["model"] == data["config"]["model_args"].split("=", 1)[1]
                assert row["lm_eval_version"] == data["lm_eval_version"]


def test_samples_are_read_per_item_and_average_to_the_aggregate(lm_eval_runs):
    tidy = load_results([lm_eval_runs / "runs"])
    for _, row in tidy.iterrows():
        items = read_items(row["source"], row["task"], row["metric"], row["filter"])
        assert len(items) == row["n_samples"]
        assert np.mean(list(items.values())) == pytest.approx(row["value"], rel=1e-12)
        if row["task"] == "tiny_nll":
            assert sorted(items)[0] == "gsm8k-test-0"  # the document's own id, not the index


def test_pythia_v03_results_are_read(pythia):
    path = pythia / "pythia-160m" / "zero-shot" / "160m_step143000.json"
    data = raw(path)
    tidy = load_results([path])
    row = tidy[(tidy["task"] == "arc_challenge") & (tidy["metric"] == "acc")].iloc[0]
    assert row["value"] == data["results"]["arc_challenge"]["acc"]
    assert row["stderr"] == data["results"]["arc_challenge"]["acc_stderr"]
    assert (row["model"], row["revision"]) == ("EleutherAI/pythia-v1.1-160m", "step143000")
    assert row["filter"] == "none" and row["lm_eval_version"] == "0.3"
    assert row["num_fewshot"] == 0 and row["higher_is_better"] is True
    ppl = tidy[(tidy["task"] == "lambada_openai") & (tidy["metric"] == "ppl")].iloc[0]
    assert ppl["higher_is_better"] is False
    crows = tidy[tidy["metric"] == "likelihood_difference"].iloc[0]
    assert crows["higher_is_better"] is None  # unknown: the user must say
    assert len(tidy[tidy["task"].str.startswith("hendrycksTest-")]) == 57 * 2


def test_discover_needs_a_pattern_for_v03_trees(pythia):
    with pytest.raises(RBridgeError, match=r"no files matching 'results_\*.json'.*--pattern"):
        discover([pythia / "pythia-160m"])
    assert len(discover([pythia / "pythia-160m"], "*.json")) == 27 + 15
    with pytest.raises(RBridgeError, match=r"nowhere\.json: no such file"):
        discover(["nowhere.json"])


def test_join_by_recipe_pairs_the_right_runs(lm_eval_runs):
    joined = join(
        load_results([lm_eval_runs / "runs"]), PROXY, TARGET, on="recipe", group_by="corpus"
    )
    assert joined.pairs["key"].tolist() == ["A", "B", "C", "D"]
    assert joined.proxy.higher_is_better is False and joined.target.higher_is_better is True
    for _, pair in joined.pairs.iterrows():
        proxy, target = raw(Path(pair["proxy_run"])), raw(Path(pair["target_run"]))
        assert proxy["configs"]["tiny_nll"]["metadata"]["recipe"] == pair["key"]
        assert proxy["configs"]["tiny_nll"]["metadata"]["role"] == "proxy"
        assert target["configs"]["tiny_mc"]["metadata"]["role"] == "target"
        assert pair["x"] == proxy["results"]["tiny_nll"]["answer_nll,none"]
        assert pair["y"] == target["results"]["tiny_mc"]["acc,none"]
        assert pair["group"] == proxy["configs"]["tiny_nll"]["metadata"]["corpus"]
    assert joined.proxy_only.empty and joined.target_only.empty and not joined.notes


def test_duplicates_are_an_error_or_averaged_and_orphans_are_reported(lm_eval_runs):
    tidy = load_results([lm_eval_runs / "runs", lm_eval_runs / "extra"])
    with pytest.raises(
        RBridgeError,
        match=r"proxy: 1 join key\(s\) have several runs, e\.g\. "
        r"'A': .*proxy-A.*proxy-dup.*--on-duplicate mean",
    ):
        join(tidy, PROXY, TARGET)
    joined = join(tidy, PROXY, TARGET, on_duplicate="mean")
    a = joined.pairs.set_index("key").loc["A"]
    dup_runs = joined.duplicates[0]["runs"]
    values = [raw(Path(r))["results"]["tiny_nll"]["answer_nll,none"] for r in dup_runs]
    assert a["x"] == pytest.approx(np.mean(values), rel=1e-12)
    assert joined.proxy_only["key"].tolist() == ["E"]
    assert "1 proxy run(s) have no partner on 'recipe'" in joined.notes[0]
    assert joined.report()["unjoined_proxy_runs"][0]["key"] == "E"


def test_mismatched_join_names_both_key_sets(lm_eval_runs):
    tidy = load_results([lm_eval_runs / "runs"])
    proxy = Side("proxy", "tiny_nll", "answer_nll", where=("role=proxy", "recipe=A"))
    target = Side("target", "tiny_mc", "acc", where=("role=target", "recipe=B"))
    with pytest.raises(
        RBridgeError,
        match=r"no 'recipe' value is shared .* proxy keys "
        r"\['A'\] \(1\), target keys \['B'\] \(1\)",
    ):
        join(tidy, proxy, target)
    with pytest.raises(
        RBridgeError,
        match=r"join field 'seed' is missing .* fields here: .*"
        r"recipe",
    ):
        join(tidy, PROXY, TARGET, on="seed")


def test_missing_metric_task_and_unmatched_where(lm_eval_runs):
    tidy = load_results([lm_eval_runs / "runs"])
    with pytest.raises(
        RBridgeError,
        match=r"results_.*\.json, field 'results\.tiny_nll': proxy "
        r"task 'tiny_nll' has no metric 'rbridge_nll' "
        r"\(metrics: answer_nll\)",
    ):
        select_scores(tidy, Side("proxy", "tiny_nll", "rbridge_nll"))
    with pytest.raises(
        RBridgeError,
        match=r"no results for task 'gsm8k'; tasks present: "
        r"\['tiny_mc', 'tiny_nll'\]",
    ):
        select_scores(tidy, Side("target", "gsm8k", "exact_match"))
    with pytest.raises(
        RBridgeError,
        match=r"no run with task 'tiny_mc' matches where "
        r"\['role=judge'\]",
    ):
        select_scores(tidy, Side("target", "tiny_mc", "acc", where=("role=judge",)))


def test_nan_and_non_numeric_values_name_file_and_field(lm_eval_runs, tmp_path):
    source = results_files(lm_eval_runs / "runs" / "proxy-B")[0]
    damaged = copy_run(source, tmp_path / "nan")
    data = raw(damaged)
    data["results"]["tiny_nll"]["answer_nll,none"] = float("nan")
    data["results"]["tiny_mc"]["acc,none"] = "high"
    damaged.write_text(json.dumps(data))  # json writes NaN, as Python's json reader accepts
    tidy = load_results([damaged])
    with pytest.raises(
        RBridgeError,
        match=r"nan.*results_.*json, field "
        r"'results\.tiny_nll\.answer_nll,none': proxy value "
        r"is NaN",
    ):
        select_scores(tidy, Side("proxy", "tiny_nll", "answer_nll"))
    with pytest.raises(
        RBridgeError,
        match=r"field 'results\.tiny_mc\.acc,none': target value "
        r"'high' is not a number",
    ):
        select_scores(tidy, Side("target", "tiny_mc", "acc"))


def test_malformed_results_files_give_one_clear_message(lm_eval_runs, tmp_path):
    source = results_files(lm_eval_runs / "runs" / "proxy-A")[0]
    truncated = tmp_path / "results_truncated.json"
    truncated.write_text(source.read_text()[:500])
    with pytest.raises(RBridgeError, match=r"results_truncated\.json, line \d+: not valid JSON"):
        load_results([truncated])
    listed = tmp_path / "results_list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(RBridgeError, match="top level is not an object"):
        load_results([listed])
    no_results = tmp_path / "results_none.json"
    no_results.write_text(json.dumps({"config": {}}))
    with pytest.raises(
        RBridgeError,
        match=r"results_none\.json, field 'results': not an "
        r"lm-eval results file",
    ):
        load_results([no_results])
    bad_args = tmp_path / "results_args.json"
    bad_args.write_text(
        json.dumps({"results": {"t": {"acc,none": 0.5}}, "config": {"model_args": "pretrained"}})
    )
    with pytest.raises(RBridgeError, match="model_args entry 'pretrained' is not key=value"):
        load_results([bad_args])


def test_several_filters_need_a_choice(lm_eval_runs, tmp_path):
    source = results_files(lm_eval_runs / "runs" / "target-A")[0]
    copied = copy_run(source, tmp_path / "filters")
    data = raw(copied)
    data["results"]["tiny_mc"]["acc,strict-match"] = 0.125
    copied.write_text(json.dumps(data))
    tidy = load_results([copied])
    with pytest.raises(
        RBridgeError,
        match=r"several filters \['none', 'strict-match'\]; choose "
        r"one with --target-filter",
    ):
        select_scores(tidy, Side("target", "tiny_mc", "acc"))
    chosen = select_scores(tidy, Side("target", "tiny_mc", "acc", filter="strict-match"))
    assert chosen.table["value"].tolist() == [0.125]


def test_task_glob_averages_mmlu_subjects(pythia):
    path = pythia / "pythia-12b" / "zero-shot" / "12b_step143000.json"
    data = raw(path)
    scores = select_scores(load_results([path]), Side("target", "hendrycksTest-*", "acc"))
    subjects = [v for k, v in data["results"].items() if k.startswith("hendrycksTest-")]
    assert len(scores.tasks) == 57
    assert scores.table["value"].iloc[0] == pytest.approx(
        np.mean([s["acc"] for s in subjects]), rel=1e-12
    )
    assert scores.table["stderr"].iloc[0] == pytest.approx(
        np.sqrt(sum(s["acc_stderr"] ** 2 for s in subjects)) / 57, rel=1e-12
    )


def test_direction_must_be_known_or_stated(pythia):
    tidy = load_results([pythia / "pythia-160m" / "zero-shot" / "160m_step143000.json"])
    side = Side("proxy", "crows_pairs_english", "likelihood_difference")
    with pytest.raises(RBridgeError, match="pass --proxy-higher-is-better yes or no"):
        select_scores(tidy, side)
    stated = Side("proxy", "crows_pairs_english", "likelihood_difference", higher_is_better=False)
    assert select_scores(tidy, stated).side.higher_is_better is False


def test_where_conditions(pythia):
    tidy = load_results([pythia / "pythia-160m" / "zero-shot"], "*.json")
    side = Side("proxy", "arc_challenge", "acc", where=("revision=step1?3000",))
    assert sorted(select_scores(tidy, side).table["revision"]) == [
        "step103000",
        "step113000",
        "step123000",
        "step133000",
        "step143000",
    ]
    numeric = Side("proxy", "arc_challenge", "acc", where=("num_fewshot<=0", "revision!=step*0"))
    # 27 checkpoints, of which steps 1, 2, 4, ..., 512 (10) do not end in 0
    assert sorted(select_scores(tidy, numeric).table["revision"]) == sorted(
        f"step{2**k}" for k in range(10)
    )
    with pytest.raises(RBridgeError, match=r"--where 'model<=3': value .* is not a number"):
        select_scores(tidy, Side("proxy", "arc_challenge", "acc", where=("model<=3",)))


def test_manifest_assigns_roles_keys_and_groups(lm_eval_runs, tmp_path):
    lines = ["path,role,key,group"]
    for path in results_files(lm_eval_runs / "runs"):
        meta = raw(path)["configs"]["tiny_nll"]["metadata"]
        lines.append(f"{path},{meta['role']},recipe-{meta['recipe']},{meta['corpus']}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    tidy = load_manifest(manifest)
    joined = join(
        tidy,
        Side("proxy", "tiny_nll", "answer_nll", where=("role=proxy",)),
        Side("target", "tiny_mc", "acc", where=("role=target",)),
        on="manifest_key",
        group_by="manifest_group",
    )
    by_recipe = join(load_results([lm_eval_runs / "runs"]), PROXY, TARGET)
    assert joined.pairs["x"].tolist() == by_recipe.pairs["x"].tolist()
    assert joined.pairs["key"].tolist() == ["recipe-A", "recipe-B", "recipe-C", "recipe-D"]
    assert sorted(set(joined.pairs["group"])) == ["code", "web"]
    (tmp_path / "bad.csv").write_text("path,role,key\nmissing.json,proxy,A\n")
    with pytest.raises(
        RBridgeError,
        match=r"bad\.csv, line 2, field 'path': results file "
        r"'missing\.json' not found",
    ):
        load_manifest(tmp_path / "bad.csv")
    (tmp_path / "role.csv").write_text(f"path,role,key\n{lines[1].split(',')[0]},judge,A\n")
    with pytest.raises(RBridgeError, match=r"line 2, field 'role': role must be one of"):
        load_manifest(tmp_path / "role.csv")


def test_item_matrix_and_intermediate(lm_eval_runs):
    tidy = load_results([lm_eval_runs / "runs"])
    intermediate = Side("intermediate", "tiny_nll", "answer_nll", where=("role=target",))
    joined = join(tidy, PROXY, TARGET, intermediate=intermediate)
    for _, pair in joined.pairs.iterrows():
        assert pair["z"] == raw(Path(pair["target_run"]))["results"]["tiny_nll"]["answer_nll,none"]
    sources = joined.pairs["proxy_source"].tolist()
    matrix = item_matrix(sources, joined.proxy, joined.tasks["proxy"])
    assert matrix.shape == (4, 8)
    check_item_means(matrix, joined.pairs["x"], sources, joined.proxy)
    assert samples_path(sources[0], "tiny_nll").name.startswith("samples_tiny_nll_")
    with pytest.raises(RBridgeError, match="is not the mean of its per-item values"):
        check_item_means(matrix, joined.pairs["x"] + 1.0, sources, joined.proxy)
