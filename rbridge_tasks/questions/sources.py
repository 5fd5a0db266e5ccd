"""The six benchmarks: their questions, gold answers and the proxy's prompt.

Questions come from a local directory laid out like `shared/data/` (`--metadata data_dir=DIR`;
`--data-dir` in `rbridge traces`) or, by default, from the Hugging Face hub datasets that lm-eval's
own tasks use. Either way each question gets the benchmark's native id, which is what trace
records join on. Other benchmarks come from a question file (`question_file`) or an lm-eval task
(`lm_eval_source`) as the same `Question`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, first_line, located
from rbridge_tasks.core.hub import DATA_DIR_OPTION, hub_unreachable
from rbridge_tasks.core.jsonl import iter_jsonl

# a benchmark of the user's own is named so: it names trace records and a pack's files
BENCHMARK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
BENCHMARK_NAMES = ("gsm8k", "math500", "arc_challenge", "mmlu_pro", "csqa", "humaneval")
# how each of the six asks for and checks its answers (`ANSWER_TYPES`)
ANSWER_TYPE_OF = {
    "gsm8k": "number",
    "math500": "math",
    "arc_challenge": "choice",
    "mmlu_pro": "choice",
    "csqa": "choice",
    "humaneval": "code",
}


# How a question's answer is asked for and checked (`traces.prompts`, `traces.answers`).
ANSWER_TYPES = ("number", "math", "choice", "code", "text")
_NUMBER = re.compile(r"\s*[-+]?(\d[\d,]*(\.\d*)?|\.\d+)\s*")
_LATEX = re.compile(r"[\\^{}$]")


def guess_answer_type(questions: list[Question]) -> str:
    """For a benchmark whose answer type is not given: `choice` when questions have options,
    `number` when every gold is a number, `math` when a gold looks like LaTeX, else `text`."""
    if any(q.choices for q in questions):
        return "choice"
    if questions and all(_NUMBER.fullmatch(q.gold) for q in questions):
        return "number"
    if any(_LATEX.search(q.gold) for q in questions):
        return "math"
    return "text"


@dataclass(frozen=True)
class Question:
    """One benchmark question, whatever its source (the six, a question file, an lm-eval task).

    `choices` are (label, text) pairs and `gold` a label for multiple choice; `prompt`, when the
    source has a context of its own (an lm-eval task's prompt, few-shot included), is what the
    proxy reads before the trace, after which comes `delimiter`.
    """

    id: str
    benchmark: str
    question: str
    gold: str
    choices: tuple[tuple[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    answer_type: str = ""
    prompt: str | None = None
    delimiter: str = " "

    def __post_init__(self) -> None:
        if not self.answer_type:  # the six know theirs; any other benchmark is free text
            object.__setattr__(self, "answer_type", ANSWER_TYPE_OF.get(self.benchmark, "text"))


@dataclass(frozen=True)
class Source:
    local_file: str
    hub_path: str
    hub_name: str | None
    hub_split: str


_SOURCES = {
    "gsm8k": Source("gsm8k/test.jsonl", "openai/gsm8k", "main", "test"),
    "math500": Source("math500/test.jsonl", "HuggingFaceH4/MATH-500", None, "test"),
    "arc_challenge": Source(
        "arc_challenge/ARC-Challenge-Test.jsonl", "allenai/ai2_arc", "ARC-Challenge", "test"
    ),
    "mmlu_pro": Source("mmlu_pro/test.jsonl.gz", "TIGER-Lab/MMLU-Pro", None, "test"),
    "csqa": Source("commonsenseqa/dev_rand_split.jsonl", "tau/commonsense_qa", None, "validation"),
    "humaneval": Source("humaneval/HumanEval.jsonl.gz", "openai/openai_humaneval", None, "test"),
}


def check_benchmark(name: str) -> str:
    if name not in BENCHMARK_NAMES:
        raise RBridgeError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARK_NAMES)}")
    return name


def load_questions(benchmark: str, data_dir: str | Path | None = None) -> list[Question]:
    """All questions of a benchmark's scored split, in the benchmark's own order."""
    check_benchmark(benchmark)
    source = _SOURCES[benchmark]
    rows, origin = read_source(
        source,
        data_dir,
        missing=f"benchmark file not found: {{path}} ({DATA_DIR_OPTION.get()}={data_dir!s} "
        f"must be laid out like shared/data/, with {source.local_file})",
    )
    normalise = _NORMALISERS[benchmark]
    out = []
    for index, (line, row) in enumerate(rows):  # GSM8K's ids are row indexes
        try:
            out.append(normalise(index, row))
        except (KeyError, TypeError, ValueError) as exc:
            raise located(origin, f"unexpected record layout ({exc!r})", line=line) from exc
    return out


def read_source(
    source: Source, data_dir: str | Path | None, *, missing: str, hub_failed: str | None = None
) -> tuple[list[tuple[int, dict]], str]:
    """(line number, row) pairs of a dataset split, and where they came from: the local file
    under `data_dir` when one is given, else the hub dataset (the one loader of both).

    `missing` is the error for an absent local file (`{path}` is filled in); `hub_failed`, if
    given, wraps a hub failure (`{origin}` and `{reason}`).
    """
    if data_dir is not None:
        path = Path(data_dir) / source.local_file
        if not path.is_file():
            raise RBridgeError(missing.format(path=path))
        return list(iter_jsonl(path)), str(path)
    origin = f"the {source.hub_split} split of {source.hub_path}"
    try:
        return list(enumerate(load_hub(source), start=1)), origin
    except RBridgeError as exc:
        if hub_failed is None:
            raise
        reason = first_line(exc.__cause__ or exc)
        raise RBridgeError(hub_failed.format(origin=origin, reason=reason)) from exc


def proxy_prompt(q: Question) -> str:
    """The default (`context=qa`) context the proxy reads; the trace follows after one space.
    A source with a prompt of its own (an lm-eval task) gives it."""
    if q.prompt is not None:
        return q.prompt
    return f"Question: {question_body(q)}\nAnswer:"


def question_body(q: Question) -> str:
    """The question as the proxy reads it: options listed, code as its code prompt.

    `context=concat` puts the trace right after it, as the authors' span-mask scorer does.
    """
    if q.answer_type == "code":
        return f"Complete the following Python function.\n```python\n{q.question}```"
    if q.choices:
        options = "\n".join(f"{label}. {text}" for label, text in q.choices)
        return f"{q.question}\n{options}"
    return q.question


def reference_answer(q: Question) -> str:
    """The benchmark's own reference text, for the gold-label NLL baseline: the GSM8K and MATH
    solutions, the correct option's text, HumanEval's canonical solution."""
    if q.choices:
        return next(text for label, text in q.choices if label == q.gold)
    return q.extra.get("solution", q.gold)


def normalise_text(text: str) -> str:
    """Compare questions across sources: Unicode compatibility form, collapsed whitespace."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def load_hub(source: Source, local_copy: str | None = None) -> Iterator[dict]:
    """The rows of a hub dataset split, failing in one line that says what to pass instead
    (`local_copy`; by default the benchmark-questions folder)."""
    import datasets

    local_copy = (
        local_copy or f"{DATA_DIR_OPTION.get()}=DIR (a local copy laid out like shared/data/)"
    )
    name = source.hub_path + (f" subset {source.hub_name!r}" if source.hub_name else "")
    offline = hub_unreachable()
    if offline and not datasets.config.HF_HUB_OFFLINE:
        # datasets would retry for a minute; its offline mode (which reads the cache) is opt-in
        raise RBridgeError(
            f"cannot load {name}: the hub is unreachable ({offline}); pass {local_copy}, or set "
            "HF_DATASETS_OFFLINE=1 to use a cached copy"
        )
    try:
        ds = datasets.load_dataset(source.hub_path, source.hub_name, split=source.hub_split)
    except Exception as exc:  # the hub raises many types; the user needs one message
        raise RBridgeError(
            f"could not load {name} from the Hugging Face hub ({first_line(exc)}); pass "
            f"{local_copy}"
        ) from exc
    yield from ds


def _mc_choices(choices: Any) -> tuple[tuple[str, str], ...]:
    """ARC/CSQA choices: a list of {label, text} (AI2 files) or {label: [], text: []} (hub)."""
    if isinstance(choices, dict):
        return tuple(zip(choices["label"], choices["text"], strict=True))
    return tuple((c["label"], c["text"]) for c in choices)


def _gsm8k(index: int, row: dict) -> Question:
    answer = row["answer"]
    gold = answer.split("####")[-1].strip()
    return Question(str(index), "gsm8k", row["question"], gold, extra={"solution": answer})


def _math500(index: int, row: dict) -> Question:
    return Question(
        row["unique_id"],
        "math500",
        row["problem"],
        row["answer"],
        extra={
            "subject": row.get("subject"),
            "level": row.get("level"),
            "solution": row["solution"],
        },
    )


def _arc(index: int, row: dict) -> Question:
    q = row["question"]
    stem, choices = (q["stem"], q["choices"]) if isinstance(q, dict) else (q, row["choices"])
    return Question(row["id"], "arc_challenge", stem, row["answerKey"], _mc_choices(choices))


def _csqa(index: int, row: dict) -> Question:
    q = row["question"]
    stem, choices = (q["stem"], q["choices"]) if isinstance(q, dict) else (q, row["choices"])
    return Question(row["id"], "csqa", stem, row["answerKey"], _mc_choices(choices))


def _mmlu_pro(index: int, row: dict) -> Question:
    labels = "ABCDEFGHIJKLMNOP"
    choices = tuple((labels[i], text) for i, text in enumerate(row["options"]))
    return Question(
        str(row["question_id"]),
        "mmlu_pro",
        row["question"],
        row["answer"],
        choices,
        extra={"category": row.get("category"), "src": row.get("src")},
    )


def _humaneval(index: int, row: dict) -> Question:
    return Question(
        row["task_id"],
        "humaneval",
        row["prompt"],
        row["canonical_solution"],
        extra={"test": row["test"], "entry_point": row["entry_point"]},
    )


_NORMALISERS = {
    "gsm8k": _gsm8k,
    "math500": _math500,
    "arc_challenge": _arc,
    "mmlu_pro": _mmlu_pro,
    "csqa": _csqa,
    "humaneval": _humaneval,
}
