"""Every per-document number equals what was recorded before the package was reorganised
(`tests/golden.py`): six tasks in document and pieces mode and the six baseline tasks, three
tokenizer families, float64 models, to 1e-9."""

from __future__ import annotations

import json

import pytest
from golden import FAMILIES, GOLDEN, RUNS, run

RECORDED = json.loads((GOLDEN / "numbers.json").read_text())


@pytest.mark.parametrize("name", list(RUNS))
@pytest.mark.parametrize("family", FAMILIES)
def test_numbers_are_the_recorded_ones(family, name, data_dir):
    expected = RECORDED[f"{family}/{name}"]
    got = run(family, name, data_dir)
    assert sorted(got) == sorted(expected)
    for task, documents in expected.items():
        assert sorted(got[task]) == sorted(documents), task
        for doc_id, metrics in documents.items():
            assert sorted(got[task][doc_id]) == sorted(metrics), (task, doc_id)
            for metric, value in metrics.items():
                assert got[task][doc_id][metric] == pytest.approx(value, rel=1e-12, abs=1e-9), (
                    task,
                    doc_id,
                    metric,
                )


def test_the_yamls_list_exactly_the_metrics_the_tasks_report():
    """The template YAMLs are the one table of metric names and directions: `hf-rbridge`
    reports every metric of the rBridge template (and the baselines' of theirs), and nothing
    else, so no reported number goes without a declared direction."""
    import yaml

    from rbridge_tasks import tasks_path

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    for template, run_name in (("_default_template_yaml", "document"),
                               ("_baselines_template_yaml", "baselines")):  # fmt: skip
        listed = {m["metric"] for m in yaml.load((tasks_path() / template).read_text(), Loader)
                  ["metric_list"]}  # fmt: skip
        for family in FAMILIES:
            for task, documents in RECORDED[f"{family}/{run_name}"].items():
                reported = set().union(*documents.values())
                if task.endswith("humaneval") and run_name == "baselines":
                    reported |= {"mpca", "mpca_nll"}  # HumanEval has no short answer
                assert reported == listed, (template, task)
