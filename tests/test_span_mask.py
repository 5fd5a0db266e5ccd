"""The span-mask tasks (`rbridge_mask_<subset>`, README "Span-mask tasks") against independent
computations (`span_reference`): `as_released` as the authors' published scorer computes it, and
the consistent numbers from their definition, per document and per subset, to 1e-6; on a
tokenizer without BOS (GPT-2 style) and two that add one (SentencePiece and Llama-3 style), with
our one-pass backend and with stock `hf` (the pieces adapter). Models run in float64, as the
references do, so the numbers agree to rounding.

Every subset's rows are written here, each tag case the README's rules name among them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import span_reference as ref
from tiny_models import build_tiny_lm

from predictors.data.ingest import load_results, read_items
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.harness.api import evaluate
from rbridge_tasks.records.mask_rows import SUBSETS, load_mask_rows

TOLERANCE = 1e-6
TASKS = {subset: f"rbridge_mask_{subset.replace('-', '_')}" for subset in SUBSETS}

QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?\nA. $10\nB. $12\nC. $6\nD. $8",
    "Betty is saving money for a new wallet which costs $100. How much more money does she need?",
]
# (reasoning, what it exercises); the subsets take them in turn, so every subset has its own mix
REASONINGS = [
    (
        "In April she sold <span>48 clips</span>. In May she sold <span>48 / 2 = 24</span> clips. "
        "Altogether <span>48 + 24 = 72</span>.",
        "plain spans",
    ),
    (
        "<span>She earns 12 / 60 = $0.2 per minute.<\\span> So for 50 minutes she earned "
        "<span>0.2 x 50 = $10</span>.",
        "a span at the first letter, a backslash close",
    ),
    (
        "Half of the money is 100 / 2 = 50 dollars.\nShe has 50 dollars, her parents give 15, "
        "her grandparents 30.",
        "no tag: scored whole",
    ),
    (
        "First <span>a step\nacross two lines</span> then <span>a one-line step</span> here.",
        "a span across lines: the authors' pattern skips it",
    ),
    ("<span>Outer <span>inner</span> tail</span> and the rest.", "nested spans"),
    (
        "A stray close</span> and <span>one real span</span> and an open <span>never closed.",
        "unmatched tags",
    ),
    ("Nothing here<span></span> but an empty span.", "an empty span: marks no letter"),
    (
        "대한민국의 수도는 <span>서울</span>이다. So the answer is <span>é = 3</span>",
        "non-ASCII letters, a span at the end",
    ),
]


def subset_rows(subset: str) -> list[dict[str, str]]:
    k = list(SUBSETS).index(subset)
    n = 2 if subset == "aime25" else 3
    return [
        {"question": QUESTIONS[(k + i) % len(QUESTIONS)],
         "reasoning": REASONINGS[(k + 3 * i) % len(REASONINGS)][0]}
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def mask_copy(tmp_path_factory) -> Path:
    """A local copy of the release: one `<subset>.jsonl` per subset."""
    folder = tmp_path_factory.mktemp("rbridge-mask")
    for subset in SUBSETS:
        lines = [json.dumps(row, ensure_ascii=False) for row in subset_rows(subset)]
        (folder / f"{subset}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def llama3_dir(tmp_path_factory, data_dir) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("llama3"), family="llama3", seed=2)


def test_rows_cover_every_case():
    used = {row["reasoning"] for subset in SUBSETS for row in subset_rows(subset)}
    assert used == {reasoning for reasoning, _ in REASONINGS}


def run(model: str, model_dir: Path, mask_copy: Path, tasks: list[str]) -> dict:
    return evaluate(
        model, tasks, model_args=f"pretrained={model_dir},dtype=float64,softmax_dtype=float64",
        metadata={"mask_data": str(mask_copy)},
        bootstrap_iters=0, batch_size=8, log_samples=True,
    )  # fmt: skip


def check_against_reference(out: dict, model_dir: Path, subsets, *, pieces=False) -> int:
    """Check every number; with `pieces`, only the documents (and subsets) a string-level
    backend can score exactly. Returns how many documents were checked."""
    released_means, consistent_means = [], []
    checked = 0
    for subset in subsets:
        task = TASKS[subset]
        samples = sorted(out["samples"][task], key=lambda s: int(s["doc"]["id"]))
        rows = subset_rows(subset)
        assert [s["doc"]["question"] for s in samples] == [r["question"] for r in rows]
        released, consistent = [], []
        exact = [not pieces or ref.pieces_exact(model_dir, **row) for row in rows]
        for sample, row, ok in zip(samples, rows, exact, strict=True):
            if not ok:
                continue
            checked += 1
            where = (task, sample["doc"]["id"])
            mine = ref.as_released_row(model_dir, row["question"], row["reasoning"])
            assert sample["as_released_loglikelihood"] == pytest.approx(
                mine["loglikelihood"], abs=TOLERANCE
            ), where
            assert sample["as_released_words"] == mine["words"], where
            assert sample["as_released_bytes"] == mine["bytes"], where
            released.append(mine)
            theirs = ref.consistent_row(model_dir, row["question"], row["reasoning"])
            for metric, value in theirs.items():
                assert sample[metric] == pytest.approx(value, abs=TOLERANCE), (*where, metric)
            consistent.append(theirs)
        if not all(exact):
            continue
        result = out["results"][task]
        pooled = ref.authors_aggregate(released)
        for metric, value in pooled.items():
            got = result[f"as_released_{metric},none"]
            assert got == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), (task, metric)
        for metric, value in ref.pooled_consistent(consistent).items():
            got = result[f"{metric},none"]
            assert got == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), (task, metric)
        released_means.append(pooled["bits_per_byte"])
        consistent_means.append(ref.pooled_consistent(consistent)["span_bits_per_byte"])
    if len(released_means) == len(SUBSETS):
        group = out["results"]["rbridge_mask"]
        assert group["as_released_bits_per_byte,none"] == pytest.approx(
            sum(released_means) / len(SUBSETS), abs=TOLERANCE
        )
        assert group["span_bits_per_byte,none"] == pytest.approx(
            sum(consistent_means) / len(SUBSETS), abs=TOLERANCE
        )
    return checked


@pytest.mark.parametrize("family", ["gpt2", "llama", "llama3"])
def test_every_number_of_the_group_matches_the_references(family, request, mask_copy):
    model_dir = request.getfixturevalue(f"{family}_dir")
    out = run("hf-rbridge", model_dir, mask_copy, ["rbridge_mask"])
    check_against_reference(out, model_dir, list(SUBSETS))


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_stock_hf_gives_the_same_numbers(family, request, mask_copy):
    """Where each token can be scored alone (lm-eval's loglikelihood returns sums over tokens
    that the text before them re-tokenizes differently: README, "How the stock backends answer
    it"); the SentencePiece model's Korean row is not, and is left out."""
    model_dir = request.getfixturevalue(f"{family}_dir")
    subsets = ["mmlu-pro", "mmlu", "cqa"]
    tasks = [TASKS[s] for s in subsets]
    stock = run("hf", model_dir, mask_copy, tasks)
    assert check_against_reference(stock, model_dir, subsets, pieces=True) >= 7


def rbridge_eval(tmp_path: Path, model_dir: Path, *args: str, offline: bool = True):
    env = {k: v for k, v in os.environ.items() if offline or not k.endswith("_OFFLINE")}
    command = [sys.executable, "-m", "rbridge_tasks.cli", "eval", "--model", "hf-rbridge",
               "--model_args", f"pretrained={model_dir}", "--device", "cpu", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)  # fmt: skip


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr[-3000:]
    assert errors[0].startswith("rbridge eval: error: ")
    return errors[0]


def test_a_results_file_feeds_the_predictors(gpt2_dir, tmp_path):
    """`rbridge eval` on one JSONL of rows naming their subsets; the results file and its
    samples are what `rbridge predict` reads."""
    rows = [{"subset": s, **row} for s in ("bbh", "gpqa") for row in subset_rows(s)]
    local = tmp_path / "rows.jsonl"
    local.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    result = rbridge_eval(tmp_path, gpt2_dir, "--tasks", "rbridge_mask_bbh", "--output_path",
                          str(out), "--log_samples", "--metadata",
                          f"mask_data={local}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    table = load_results([results_file])
    row = table[(table.task == "rbridge_mask_bbh") & (table.metric == "span_bits_per_byte")]
    expected = ref.pooled_consistent(
        [ref.consistent_row(gpt2_dir, **r) for r in subset_rows("bbh")]
    )["span_bits_per_byte"]
    assert row.value.item() == pytest.approx(expected, rel=1e-5)
    assert row.higher_is_better.item() is False
    released = table[table.metric == "as_released_bits_per_byte"]
    assert released.higher_is_better.item() is False and released.value.notna().all()
    items = read_items(results_file, "rbridge_mask_bbh", "span_bpb", "none")
    assert sorted(items) == ["0", "1", "2"]
    mine = [ref.consistent_row(gpt2_dir, **r)["span_bpb"] for r in subset_rows("bbh")]
    assert [items[str(i)] for i in range(3)] == pytest.approx(mine, rel=1e-5)


def test_a_bad_row_found_after_the_model_loads_is_one_line(gpt2_dir, tmp_path):
    local = tmp_path / "bbh.jsonl"
    local.write_text(json.dumps({"question": "q", "reasoning": "a"}) + "\n"
                     + json.dumps({"question": "q", "answer": "a"}) + "\n")  # fmt: skip
    line = one_error_line(
        rbridge_eval(
            tmp_path, gpt2_dir, "--tasks", "rbridge_mask_bbh", "--metadata", f"mask_data={tmp_path}"
        )
    )
    assert f"{local}, line 2, field 'reasoning': missing" in line


def test_without_the_hub_it_says_what_to_pass(gpt2_dir, tmp_path):
    line = one_error_line(rbridge_eval(tmp_path, gpt2_dir, "--tasks", "rbridge_mask"))
    assert "--metadata mask_data=..." in line and "aime25" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"question": "q", "reasoning": 3}\n', "line 1, field 'reasoning': expected text"),
        ('{"question": "q", "reasoning": "a"}\n{"question": \n', "line 2"),
        ('["q", "a"]\n', "line 1: expected an object with 'question' and 'reasoning'"),
        ('{"question": " ", "reasoning": "a"}\n', "line 1, field 'question': empty"),
        ('{"question": "q", "reasoning": "<span></span>"}\n', "field 'reasoning': no text"),
        ('{"subset": "gpqa", "question": "q", "reasoning": "a"}\n', "no row of subset 'bbh'"),
        ("", "no rows"),
    ],
    ids=["not text", "bad JSON", "not an object", "empty question", "only tags", "other subset",
         "empty file"],
)  # fmt: skip
def test_each_bad_local_copy_is_one_clear_error(content, expected, tmp_path):
    local = tmp_path / "rows.jsonl"
    local.write_text(content, encoding="utf-8")
    with pytest.raises(RBridgeError) as caught:
        load_mask_rows("bbh", local)
    assert str(local) in str(caught.value) and expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_folder_without_the_subset_names_what_it_looked_for(tmp_path):
    (tmp_path / "mmlu-pro.jsonl").write_text('{"question": "q", "reasoning": "a"}\n')
    with pytest.raises(RBridgeError, match=r"no file of subset 'mmlu' \(looked for mmlu.jsonl"):
        load_mask_rows("mmlu", tmp_path)  # `mmlu-pro.jsonl` is another subset's file
    assert [r.reasoning for r in load_mask_rows("mmlu-pro", tmp_path)[0]] == ["a"]


def test_a_hub_snapshot_folder_reads_its_parquet_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = subset_rows("arena-hard")
    (tmp_path / "arena-hard").mkdir()
    pq.write_table(
        pa.Table.from_pylist(rows), tmp_path / "arena-hard" / "test-00000-of-00001.parquet"
    )
    read, origin = load_mask_rows("arena-hard", tmp_path)
    assert [(r.question, r.reasoning) for r in read] == [
        (x["question"], x["reasoning"]) for x in rows
    ]
    assert origin.endswith("test-00000-of-00001.parquet")
