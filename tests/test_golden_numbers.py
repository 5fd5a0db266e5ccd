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
