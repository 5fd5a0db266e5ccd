"""The `context=fewshot` proxy context: k solved exemplars, then the question, in lm-eval's format.

The paper scores traces "using their few-shot prompting format" (a commented-out line of its
source; its evaluations are "5-shot CoT"), so the proxy reads the trace where, under the
benchmark's lm-eval chain-of-thought task, its own reasoning would start. The format and the
exemplars are lm-eval 0.4.13's own wherever it has them, read from the installed task files at
run time so that they cannot drift from a copy:

- gsm8k: `gsm8k/gsm8k-cot.yaml`, "Q: ...\\nA: ... The answer is N.", its 8 hard-coded exemplars
  (the chain-of-thought exemplars of Wei et al. 2022, written for that paper: they are not rows
  of the GSM8K train split).
- math500: `minerva_math`, "Problem:\\n...\\n\\nSolution: ...", the 4 hard-coded exemplars of
  Lewkowycz et al. 2022. They are read from `minerva_math/utils.py` without importing it (the
  import needs math_verify and antlr4 4.11, used only for lm-eval's own scoring). The MATH train
  split is not needed; the local `math/test.jsonl` is MATH's test split, of which MATH-500 is a
  subset, so it cannot serve.
- mmlu_pro: `mmlu_pro`, the subject's description, then the first k rows of the validation split
  of the question's own category, with their `cot_content` rationale.
- arc_challenge, csqa: lm-eval has no chain-of-thought variant; the exemplars are the first k
  rows of the train split in `commonsense_qa`'s layout (question, lettered options,
  "Answer: <letter>"). lm-eval's `arc_challenge` lists no options and answers with the option's
  text, but a trace that reasons about lettered options needs them listed (as `context=qa` does).
  The first k rather than lm-eval's seeded random draw for these two (its CoT tasks use
  `first_n` too), so that every question reads the same exemplars.
- humaneval: the test split is the only one, so there is nothing to draw exemplars from.

An exemplar whose question equals the evaluated one (ARC repeats 6 test questions in its train
split) is skipped and the next one taken, so a question never reads its own answer.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.hub import DATA_DIR_OPTION
from rbridge_tasks.questions.sources import (
    _NORMALISERS,
    Question,
    Source,
    check_benchmark,
    normalise_text,
    read_source,
)

# The split each data-drawn benchmark takes its exemplars from: a local file under data_dir
# (named as its publisher names it) or the hub dataset split that lm-eval's task uses.
_SPLITS = {
    "arc_challenge": Source(
        "arc_challenge/ARC-Challenge-Train.jsonl", "allenai/ai2_arc", "ARC-Challenge", "train"
    ),
    "csqa": Source("commonsenseqa/train_rand_split.jsonl", "tau/commonsense_qa", None, "train"),
    "mmlu_pro": Source("mmlu_pro/validation.jsonl", "TIGER-Lab/MMLU-Pro", None, "validation"),
}

MMLU_PRO_DESCRIPTION = (
    "The following are multiple choice questions (with answers) about {}. Think step by step and "
    'then finish your answer with "the answer is (X)" where X is the correct letter choice.\n'
)
_FEWSHOT_DELIMITER = "\n\n"  # lm-eval's default, which these tasks keep
_TARGET_DELIMITER = " "


@dataclass(frozen=True)
class _Exemplar:
    question: str  # normalised, to recognise the evaluated question
    text: str  # question turn, target delimiter, solved answer


@dataclass(frozen=True)
class FewshotContext:
    benchmark: str
    k: int
    # exemplars in order, per MMLU-Pro category (lm-eval draws them from the question's own
    # subject); the other benchmarks have one pool, under the key None
    pools: Mapping[str | None, tuple[_Exemplar, ...]]
    origin: str

    @classmethod
    def load(cls, benchmark: str, data_dir: str | None, k: int) -> FewshotContext:
        check_benchmark(benchmark)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise RBridgeError(f"context=fewshot: k={k!r} must be a whole number of 1 or more")
        if benchmark == "humaneval":
            raise RBridgeError(
                "context=fewshot: humaneval has no split besides its test problems to draw "
                "exemplars from (lm-eval's humaneval is zero-shot); use context=qa or "
                "context=concat"
            )
        if benchmark == "gsm8k":
            path = _lm_eval_tasks() / "gsm8k" / "gsm8k-cot.yaml"
            samples = _read_samples(path, _gsm8k_cot_samples)
            pool = [_exemplar(benchmark, s["question"], s["target"]) for s in samples]
            pools, origin = {None: pool}, f"lm-eval's gsm8k-cot exemplars ({path})"
        elif benchmark == "math500":
            path = _lm_eval_tasks() / "minerva_math" / "utils.py"
            samples = _read_samples(path, _minerva_samples)
            pool = [_exemplar(benchmark, s["problem"], s["solution"]) for s in samples]
            pools, origin = {None: pool}, f"lm-eval's minerva_math exemplars ({path})"
        else:
            pools, origin = _split_pools(benchmark, data_dir)
        for group, pool in pools.items():
            if len(pool) < k:
                subject = "" if group is None else f" for category {group!r}"
                raise RBridgeError(
                    f"context=fewshot with k={k}: {origin} has only {len(pool)} exemplars"
                    f"{subject}; use a k of at most {len(pool)}"
                )
        return cls(benchmark, k, {group: tuple(pool) for group, pool in pools.items()}, origin)

    def prompt(self, question: Question) -> str:
        """The proxy context for `question`: k exemplars, then the question, in one format.

        It ends where lm-eval's model would start its answer; the task appends the trace after
        the YAML's target_delimiter (one space), as lm-eval appends a target.
        """
        group = question.extra.get("category") if self.benchmark == "mmlu_pro" else None
        if group not in self.pools:
            raise RBridgeError(
                f"context=fewshot: {self.benchmark} question {question.id!r}, field 'category': "
                f"{group!r} is none of the categories of {self.origin} ({sorted(self.pools)})"
            )
        own = normalise_text(question.question)
        chosen = [e.text for e in self.pools[group] if e.question != own][: self.k]
        if len(chosen) < self.k:
            raise RBridgeError(
                f"context=fewshot with k={self.k}: {self.benchmark} question {question.id!r} is "
                f"itself one of the exemplars of {self.origin}, which leaves only {len(chosen)}; "
                f"use a k of at most {len(chosen)}"
            )
        head = MMLU_PRO_DESCRIPTION.format(group) if self.benchmark == "mmlu_pro" else ""
        body = _turn(self.benchmark, question.question, question.choices)
        return head + "".join(text + _FEWSHOT_DELIMITER for text in chosen) + body


def _turn(benchmark: str, question: str, choices: tuple[tuple[str, str], ...] = ()) -> str:
    """The question as the benchmark's lm-eval task shows it (`doc_to_text`), answer left open."""
    if benchmark == "gsm8k":
        return f"Q: {question}\nA:"
    if benchmark == "math500":
        return f"Problem:\n{question}\n\nSolution:"
    if benchmark == "mmlu_pro":  # lm-eval's mmlu_pro/utils.py format_cot_example
        options = "".join(f"{label}. {text.strip()}\n" for label, text in choices)
        return f"Question:\n{question}\nOptions:\n{options}Answer: Let's think step by step."
    options = "".join(f"{label}. {text}\n" for label, text in choices)
    return f"Question: {question.strip()}\n{options}Answer:"  # commonsense_qa/default.yaml


def _exemplar(
    benchmark: str, question: str, answer: str, choices: tuple[tuple[str, str], ...] = ()
) -> _Exemplar:
    text = _turn(benchmark, question, choices) + _TARGET_DELIMITER + answer
    return _Exemplar(normalise_text(question), text)


def _split_pools(
    benchmark: str, data_dir: str | None
) -> tuple[dict[str | None, list[_Exemplar]], str]:
    """Exemplars from another split of the dataset: the local file, else the hub split."""
    source = _SPLITS[benchmark]
    option = DATA_DIR_OPTION.get()
    rows, origin = read_source(
        source,
        data_dir,
        missing=f"context=fewshot: {benchmark} exemplars come from its {source.hub_split} split "
        f"({source.hub_path}), which {option}={data_dir} lacks: expected {{path}}; put that "
        f"split there as JSON Lines, or drop {option} to read it from the hub, or use "
        "context=qa or context=concat",
        hub_failed=f"context=fewshot: {benchmark} exemplars come from {{origin}}, which could "
        f"not be loaded ({{reason}}); put that split at DIR/{source.local_file} and pass "
        f"{option}=DIR, or use context=qa or context=concat",
    )
    pools: dict[str | None, list[_Exemplar]] = {}
    for line, row in rows:
        try:
            q = _NORMALISERS[benchmark](line - 1, row)
            if benchmark == "mmlu_pro":
                group = q.extra["category"]
                answer = row["cot_content"].replace("A: Let's think step by step. ", "")
            else:
                group, answer = None, q.gold
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise located(origin, f"unexpected record layout ({exc!r})", line=line) from exc
        if not answer.strip():  # e.g. MMLU-Pro's test rows, whose cot_content is empty
            field = "cot_content" if benchmark == "mmlu_pro" else "answerKey"
            raise located(origin, "the exemplar's answer is empty", line=line, field=field)
        pools.setdefault(group, []).append(_exemplar(benchmark, q.question, answer, q.choices))
    return pools, origin


def _lm_eval_tasks() -> Path:
    """The installed lm-eval's task folder, found without importing lm-eval."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RBridgeError(
            "context=fewshot reads lm-eval's task files, but lm-eval is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def _read_samples(path: Path, read: Callable[[str], list[dict]]) -> list[dict]:
    """The exemplars of an lm-eval task file, or one error naming the file if it changed."""
    try:
        return read(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, SyntaxError, ValueError, KeyError, TypeError) as exc:
        raise RBridgeError(
            f"context=fewshot: cannot read lm-eval's few-shot exemplars from {path} ({exc!r}); "
            "this module follows lm-eval 0.4.13's task files"
        ) from exc


def _gsm8k_cot_samples(text: str) -> list[dict]:
    return list(yaml.safe_load(text)["fewshot_config"]["samples"])


def _minerva_samples(text: str) -> list[dict]:
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == "list_fewshot_samples":
            returned = node.body[-1]
            if isinstance(returned, ast.Return) and returned.value is not None:
                return list(ast.literal_eval(returned.value))
    raise ValueError("no list_fewshot_samples() returning a literal list")
