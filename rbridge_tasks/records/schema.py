"""The trace record: one frontier reasoning trace with the frontier model's per-token logprobs.

JSONL, one record per line (`.jsonl` or `.jsonl.gz`)::

    {"id": "12", "benchmark": "gsm8k", "question": "Janet's ducks ...",
     "trace": "Janet's ducks lay 16 eggs ...", "frontier_model": "gpt-4o-2024-08-06",
     "frontier_tokens": [{"text": "Jan", "logprob": -0.0012}, ...],
     "answer": "18", "correct": true, "meta": {"prompt": "..."}}

`trace` is the scored text (final-answer line already stripped); the `text` of the frontier
tokens must concatenate to it exactly, because every character's weight comes from the frontier
token that produced it. `answer`, `correct` and `meta` are optional.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.questions.sources import BENCHMARK_NAME, BENCHMARK_NAMES

REQUIRED_FIELDS = ("id", "benchmark", "question", "trace", "frontier_model")
# A text-only trace (no frontier_tokens) is a valid record for `rbridge traces confidences` to
# complete; scoring needs the tokens.
OPTIONAL_FIELDS = ("frontier_tokens", "answer", "correct", "meta")

# Frontier APIs return logprobs that are exactly 0.0 at most; a backend's float32 log-softmax can
# overshoot by rounding. Values up to this bound are read as 0, anything larger is an error.
LOGPROB_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TraceRecord:
    id: str
    benchmark: str
    question: str
    trace: str
    frontier_model: str
    token_texts: tuple[str, ...] = ()
    token_logprobs: tuple[float, ...] = ()
    answer: str | None = None
    correct: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_tokens(self) -> bool:
        return bool(self.token_texts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "benchmark": self.benchmark,
            "question": self.question,
            "trace": self.trace,
            "frontier_model": self.frontier_model,
        }
        if self.has_tokens:
            out["frontier_tokens"] = [
                {"text": t, "logprob": lp}
                for t, lp in zip(self.token_texts, self.token_logprobs, strict=True)
            ]
        if self.answer is not None:
            out["answer"] = self.answer
        if self.correct is not None:
            out["correct"] = self.correct
        if self.meta:
            out["meta"] = self.meta
        return out


def parse_record(
    obj: Any, *, source: str, line: int | None = None, require_tokens: bool = True
) -> TraceRecord:
    """Validate one decoded JSON object; every problem names the file, line, id and field."""
    if not isinstance(obj, Mapping):
        raise located(source, f"expected a JSON object, got {type(obj).__name__}", line=line)
    raw_id = obj.get("id")
    record_id = (
        str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    )

    def fail(message: str, fld: str | None = None) -> RBridgeError:
        return located(source, message, line=line, record_id=record_id, field=fld)

    missing = [f for f in REQUIRED_FIELDS if f not in obj]
    if missing:
        raise fail(f"missing required field(s) {missing}; a record needs {list(REQUIRED_FIELDS)}")
    unknown = sorted(set(obj) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise fail(f"unknown field(s) {unknown}; put free-form data under 'meta'")
    if record_id is None or not record_id.strip():
        raise fail("must be a non-empty string or an integer", "id")
    benchmark = obj["benchmark"]
    if not isinstance(benchmark, str) or not BENCHMARK_NAME.fullmatch(benchmark):
        raise fail(
            f"must be a benchmark name (one of {list(BENCHMARK_NAMES)}, or your own benchmark's: "
            f"letters, digits, '_', '.', '-'), got {benchmark!r}",
            "benchmark",
        )
    for name in ("question", "trace", "frontier_model"):
        if not isinstance(obj[name], str) or not obj[name].strip():
            raise fail("must be a non-empty string", name)
    for name in ("id", "question", "trace", "frontier_model", "answer", "meta"):
        if name in obj and (problem := unencodable(obj[name])) is not None:
            raise fail(problem, name)
    trace: str = obj["trace"]
    texts: list[str] = []
    logprobs: list[float] = []
    if "frontier_tokens" in obj:
        texts, logprobs = _parse_tokens(obj["frontier_tokens"], fail)
        joined = "".join(texts)
        if joined != trace:
            raise fail(_mismatch_message(trace, joined), "frontier_tokens")
    elif require_tokens:
        raise fail(
            "missing: this is a text-only trace; add the frontier model's per-token "
            "logprobs with `rbridge traces confidences`",
            "frontier_tokens",
        )
    answer = obj.get("answer")
    if answer is not None and not isinstance(answer, (str, int, float)):
        raise fail("must be a string (or a number) when present", "answer")
    correct = obj.get("correct")
    if correct is not None and not isinstance(correct, bool):
        raise fail("must be true or false when present", "correct")
    meta = obj.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise fail("must be a JSON object when present", "meta")
    return TraceRecord(
        id=record_id,
        benchmark=benchmark,
        question=obj["question"],
        trace=trace,
        frontier_model=obj["frontier_model"],
        token_texts=tuple(texts),
        token_logprobs=tuple(logprobs),
        answer=None if answer is None else str(answer),
        correct=correct,
        meta=dict(meta),
    )


def _parse_tokens(tokens: Any, fail) -> tuple[list[str], list[float]]:
    if not isinstance(tokens, list) or not tokens:
        raise fail("must be a non-empty list of {text, logprob} objects", "frontier_tokens")
    texts: list[str] = []
    logprobs: list[float] = []
    for i, tok in enumerate(tokens):
        where = f"frontier_tokens[{i}]"
        if not isinstance(tok, Mapping) or "text" not in tok or "logprob" not in tok:
            raise fail("must be an object with 'text' and 'logprob'", where)
        text, lp = tok["text"], tok["logprob"]
        if not isinstance(text, str):
            raise fail("must be a string", f"{where}.text")
        if isinstance(lp, bool) or not isinstance(lp, (int, float)):
            raise fail(f"must be a number, got {lp!r}", f"{where}.logprob")
        lp = float(lp)
        if not math.isfinite(lp):
            raise fail(
                f"is {'NaN' if math.isnan(lp) else lp}; a log-probability must be a "
                "finite number <= 0",
                f"{where}.logprob",
            )
        if lp > LOGPROB_TOLERANCE:
            raise fail(f"is {lp!r}, a positive log-probability (must be <= 0)", f"{where}.logprob")
        texts.append(text)
        logprobs.append(min(lp, 0.0))
    return texts, logprobs


def unencodable(value: Any) -> str | None:
    """Why `value` cannot be written back as UTF-8 JSON, or None.

    JSON escapes can spell a lone surrogate (`"\\ud800"`), which Python decodes but no UTF-8
    writer, tokenizer or model accepts; a NaN elsewhere in `meta` would be written as the
    non-standard literal NaN. Every reader of records applies this one rule, so a record that
    validates can be scored, re-weighted and rewritten.
    """
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        return f"holds a lone surrogate {bad!r} (not a character; fix the text's encoding)"
    except ValueError:
        return "holds NaN or Infinity, which JSON cannot hold"
    return None


def _mismatch_message(trace: str, joined: str) -> str:
    pairs = enumerate(zip(trace, joined, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(trace), len(joined)))
    return (
        f"the token texts concatenate to a text ({len(joined)} characters) that differs from "
        f"'trace' ({len(trace)} characters) at character {at}: trace has "
        f"{trace[at : at + 20]!r}, tokens give {joined[at : at + 20]!r}"
    )
