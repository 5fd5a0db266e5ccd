"""DataDecide's ranking baselines, from the per-sample output of stock multiple-choice tasks.

Magnusson et al. 2025, "DataDecide: How to Predict Best Pretraining Data with Small Experiments"
(arXiv 2504.11393), rank pre-training corpora by continuous metrics of the cloze-form (each option
text scored as the continuation) ARC-Challenge / CSQA evaluations of small models. Their metric
code (`process_predictions_cheap_decisions` in the DataDecide analysis code, on OLMES outputs)
defines, per question with options i, correct option c and per-character log-likelihood
`l_i = logL_i / chars_i`:

- `correct_prob_per_char` = exp(l_c);
- `norm_correct_prob_per_char` = exp(l_c) / sum_i exp(l_i);
- `total_prob_per_char` = sum_i exp(l_i);
- `margin_per_char` = exp(l_c) - max_{i != c} exp(l_i);
- `acc_per_char` = 1 if argmax_i l_i = c (the cloze-form accuracy OLMES reports for ARC and CSQA);

each averaged over questions, all higher-is-better.

"Normalised" follows OLMES: `chars_i` is the number of characters of the continuation as it was
scored, i.e. lm-eval's request continuation `arguments.gen_args_i.arg_1`, which includes the
task's target delimiter (a leading space). lm-eval's own `acc_norm` divides by the option text
without the delimiter, one character fewer, so `acc_per_char` can differ from `acc_norm` where two
options are nearly tied.

Samples files: one JSON line per document (and filter); `filtered_resps` is stringified by
lm-eval (`[["-0.26", "False"], ...]`, one (log-likelihood, is_greedy) pair per option), `target`
is `str(doc_to_target(doc))`: an option index ("2") or an option text/letter ("B"). The gold index
is checked against lm-eval's own per-sample `acc` (argmax of the raw log-likelihoods), so a target
read the wrong way fails instead of giving silent wrong numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.data.ingest import samples_path
from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import iter_jsonl, read_json

METRICS = (
    "correct_prob_per_char",
    "norm_correct_prob_per_char",
    "total_prob_per_char",
    "margin_per_char",
    "acc_per_char",
)
DEFAULT_FILTER = "none"


@dataclass(frozen=True)
class Question:
    """One multiple-choice document as lm-eval scored it."""

    key: str
    loglikelihoods: np.ndarray
    chars: np.ndarray
    gold: int


def read_questions(path: str | Path, filt: str = DEFAULT_FILTER) -> list[Question]:
    """The scored options of every document in a multiple-choice samples JSONL.

    Raises
    ------
    RBridgeError
        A line that is not an object, a malformed or non-finite response, fewer than two
        options, a target that names no option or whose option disagrees with lm-eval's own
        `acc`, a duplicated document id, or no sample under `filt`, naming file and line.
    """
    path = str(path)
    questions: list[Question] = []
    seen: set[str] = set()
    for line, record in iter_jsonl(path):
        if not isinstance(record, dict):
            raise located(path, "a samples line must be a JSON object", line=line)
        if record.get("filter", DEFAULT_FILTER) != filt:
            continue
        doc = record.get("doc")
        key = str(doc["id"]) if isinstance(doc, dict) and "id" in doc else str(record.get("doc_id"))
        if key in seen:
            raise located(path, "duplicate document id", line=line, record_id=key)
        seen.add(key)
        questions.append(_question(path, line, key, record))
    if not questions:
        raise located(path, f"no samples with filter {filt!r}", field="filter")
    return questions


def question_metrics(q: Question) -> dict[str, float]:
    """The five DataDecide metrics of one question (definitions in the module docstring)."""
    probs = np.exp(q.loglikelihoods / q.chars)
    others = np.delete(probs, q.gold)
    return {
        "correct_prob_per_char": float(probs[q.gold]),
        "norm_correct_prob_per_char": float(probs[q.gold] / probs.sum()),
        "total_prob_per_char": float(probs.sum()),
        "margin_per_char": float(probs[q.gold] - others.max()),
        "acc_per_char": float(np.argmax(q.loglikelihoods / q.chars) == q.gold),
    }


def run_metrics(path: str | Path, filt: str = DEFAULT_FILTER) -> dict[str, tuple[float, float]]:
    """{metric: (mean over questions, standard error of the mean)} of one samples file."""
    table = np.array(
        [[question_metrics(q)[m] for m in METRICS] for q in read_questions(path, filt)]
    )
    n = len(table)
    stderr = table.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(len(METRICS), np.nan)
    return {m: (float(table[:, k].mean()), float(stderr[k])) for k, m in enumerate(METRICS)}


def add_derived(tidy: pd.DataFrame, task_spec: str) -> tuple[pd.DataFrame, list[str]]:
    """The tidy table plus DataDecide rows for every run of the matching tasks with a samples file.

    A run of the task without a samples file is listed in the notes (its DataDecide metrics are
    then missing, which `compare` reports), never skipped silently.
    """
    from predictors.data.join import task_matches

    rows, notes = [], []
    task_rows = tidy[[task_matches(t, task_spec) for t in tidy["task"]]]
    clash = task_rows[task_rows["metric"].isin(METRICS)]
    if len(clash):
        first = clash.iloc[0]
        raise located(
            str(first["source"]),
            f"task {first['task']!r} already reports {first['metric']!r}; DataDecide metrics "
            "cannot be derived beside it",
            field=f"results.{first['task']}",
        )
    for _, run in task_rows.drop_duplicates(["source", "task"]).iterrows():
        _require_multiple_choice(str(run["source"]), run["task"])
        samples = samples_path(run["source"], run["task"])
        if samples is None:
            notes.append(
                f"{run['source']}: no samples file for task {run['task']!r} (run lm-eval with "
                "--log_samples): its DataDecide metrics are missing"
            )
            continue
        for metric, (value, stderr) in run_metrics(samples).items():
            rows.append(
                {
                    **run.to_dict(),
                    "metric": metric,
                    "filter": DEFAULT_FILTER,
                    "value": value,
                    "stderr": stderr,
                    "higher_is_better": True,
                    "problem": "",
                }
            )
    if not rows:
        return tidy, notes
    derived = pd.DataFrame(rows, columns=tidy.columns)
    derived["higher_is_better"] = pd.Series([True] * len(rows), dtype=object)
    return pd.concat([tidy, derived], ignore_index=True), notes


def _require_multiple_choice(source: str, task: str) -> None:
    """Other tasks' samples also hold one response per request; read as options they would give
    numbers without meaning, so the results file must say the task is multiple_choice."""
    config = (read_json(source, allow_nan=True).get("configs") or {}).get(task) or {}
    kind = config.get("output_type")
    if kind != "multiple_choice":
        raise located(
            source,
            f"task {task!r} has output_type {kind!r}: DataDecide's metrics need a "
            "multiple_choice task (e.g. arc_challenge)",
            field=f"configs.{task}.output_type",
        )


def _question(path: str, line: int, key: str, record: dict[str, Any]) -> Question:
    def fail(message: str, field: str) -> RBridgeError:
        return located(path, message, line=line, record_id=key, field=field)

    arguments = record.get("arguments")
    responses = record.get("filtered_resps")
    if not isinstance(arguments, dict) or not arguments:
        raise fail("no request arguments (is this a samples file of lm-eval 0.4?)", "arguments")
    if not isinstance(responses, list) or len(responses) != len(arguments):
        raise fail(
            f"expected one response per option ({len(arguments)}); is this a multiple_choice task?",
            "filtered_resps",
        )
    continuations, lls = [], []
    for k, response in enumerate(responses):
        request = arguments.get(f"gen_args_{k}")
        if not isinstance(request, dict) or not isinstance(request.get("arg_1"), str):
            raise fail("request has no continuation string", f"arguments.gen_args_{k}.arg_1")
        if request.get("arg_0") == "":
            raise fail(
                "unconditional requests (acc_mutual_info) are not supported",
                f"arguments.gen_args_{k}",
            )
        try:
            lls.append(float(response[0]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise fail(
                f"response {response!r} is not a (log-likelihood, is_greedy) pair",
                f"filtered_resps[{k}]",
            ) from None
        continuations.append(request["arg_1"])
    ll = np.array(lls)
    if not np.all(np.isfinite(ll)):
        raise fail("a log-likelihood is not finite", "filtered_resps")
    if len(ll) < 2:
        raise fail("a multiple-choice question needs at least 2 options", "arguments")
    gold = _gold_index(record.get("target"), continuations, fail)
    reported = record.get("acc")
    if isinstance(reported, (int, float)) and float(np.argmax(ll) == gold) != float(reported):
        raise fail(
            f"gold option {gold} read from target {record.get('target')!r} disagrees with "
            f"lm-eval's own acc={reported} for this document",
            "target",
        )
    chars = np.array([max(len(c), 1) for c in continuations], dtype=float)
    return Question(key=key, loglikelihoods=ll, chars=chars, gold=gold)


def _gold_index(target: Any, continuations: list[str], fail: Any) -> int:
    """lm-eval's rule: an index when the target is a number, else the option equal to it."""
    text = str(target).strip()
    if text.isdigit():
        index = int(text)
        if index < len(continuations):
            return index
        raise fail(f"target index {index} but only {len(continuations)} options", "target")
    options = [c.strip() for c in continuations]
    if text in options:
        return options.index(text)
    raise fail(
        f"target {target!r} is neither an option index nor one of the options {options[:6]} "
        "(list-valued targets are not supported)",
        "target",
    )
