"""`rbridge traces generate`: frontier traces for a benchmark, resumable and crash safe.

Each finished question is appended to the output at once (one complete line, fsynced), so a
crash or Ctrl-C loses only the work in flight, and re-running the same command skips every id
already in the file. Questions deliberately left out (wrong answers under `--only-correct`,
completions with no reasoning before their answer) go to `FILE.skipped.jsonl` with the reason,
so a resumed run does not generate them again.

A record's `trace` is the completion without leading whitespace and without its final-answer
line (`scored_span.py`); its frontier tokens are cut at the same characters. `meta` keeps the
prompt as sent, the raw completion, the stripped tail and, for local models, the completion's
token ids with the index of the first one kept in the trace.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from rbridge_tasks.answer_lines import scored_span
from rbridge_tasks.benchmarks import Question
from rbridge_tasks.errors import located
from rbridge_tasks.records import TraceRecord
from rbridge_tasks.token_cuts import tokens_in_span
from rbridge_tasks.trace_io import TraceAppender, drop_partial_tail
from rbridge_tasks.traces.answers import extract_answer, is_correct
from rbridge_tasks.traces.batches import batches_with_work
from rbridge_tasks.traces.completions import Completion, GenerationBackend, GenerationRequest
from rbridge_tasks.traces.prompts import frontier_prompt

SKIPPED_SUFFIX = ".skipped.jsonl"
NO_REASONING = "no reasoning before the final answer"
INCORRECT = "incorrect answer (--only-correct)"


@dataclass
class GenerateSummary:
    questions: int
    already_done: int
    written: int = 0
    correct: int = 0
    skipped: Counter = field(default_factory=Counter)


class SkipLog:
    """Ids left out on purpose, one JSON line each, appended like the traces themselves."""

    def __init__(self, path: Path):
        self.path = path
        drop_partial_tail(path)
        self.keys: set[tuple[str, str]] = set()
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, start=1):
                    try:
                        entry = json.loads(line)
                        self.keys.add((entry["benchmark"], entry["id"]))
                    except (json.JSONDecodeError, KeyError, TypeError) as exc:
                        raise located(str(path), f"not a skip entry ({exc})", line=n) from exc

    def add(self, question: Question, reason: str, answer: str | None) -> None:
        entry = {
            "benchmark": question.benchmark,
            "id": question.id,
            "reason": reason,
            "answer": answer,
        }
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.keys.add((question.benchmark, question.id))


def generate_traces(
    questions: Sequence[Question],
    backend: GenerationBackend,
    out_path: str | Path,
    *,
    backend_label: str,
    only_correct: bool = False,
    humaneval_timeout: float = 10.0,
    progress: bool = True,
) -> GenerateSummary:
    out_path = Path(out_path)
    skip_log = SkipLog(out_path.with_name(out_path.name + SKIPPED_SUFFIX))
    with TraceAppender(out_path) as appender:
        done = appender.done_ids | skip_log.keys
        summary = GenerateSummary(
            len(questions), sum((q.benchmark, q.id) in done for q in questions)
        )
        bar = tqdm(
            total=len(questions),
            initial=summary.already_done,
            unit="question",
            desc=f"generate {questions[0].benchmark if questions else ''}",
            disable=not progress,
        )
        try:
            for question, completion in _completions(backend, questions, done):
                record, reason = build_record(
                    question, completion, backend.model_name, backend_label, humaneval_timeout
                )
                if reason is None and only_correct and not record.correct:
                    reason = INCORRECT
                if reason is None:
                    appender.append(record)
                    summary.written += 1
                    summary.correct += bool(record.correct)
                else:
                    skip_log.add(question, reason, record.answer)
                    summary.skipped[reason] += 1
                bar.update(1)
        finally:
            bar.close()
    return summary


def _completions(
    backend: GenerationBackend, questions: Sequence[Question], done: set[tuple[str, str]]
) -> Iterator[tuple[Question, Completion]]:
    """Completions of the questions not done yet, in question order (local backends: in the
    fixed batches of `batches.py`, so a resumed run is bit-identical to an uninterrupted one)."""

    def is_done(question: Question) -> bool:
        return (question.benchmark, question.id) in done

    def requests(chunk: Sequence[Question]) -> list[GenerationRequest]:
        return [GenerationRequest(q.id, frontier_prompt(q)) for q in chunk]

    if backend.batch_size is None:
        pending = [q for q in questions if not is_done(q)]
        yield from zip(pending, backend.complete(requests(pending)), strict=True)
        return
    for batch in batches_with_work(questions, backend.batch_size, is_done):
        for question, completion in zip(batch, backend.complete(requests(batch)), strict=True):
            if not is_done(question):
                yield question, completion


def build_record(
    question: Question,
    completion: Completion,
    model_name: str,
    backend_label: str,
    humaneval_timeout: float,
) -> tuple[TraceRecord, str | None]:
    """The trace record of one completion, and why it must be skipped (None: keep it)."""
    text = completion.text
    span = scored_span(text)
    kept = tokens_in_span(completion.token_texts, span.start, span.end)
    answer = extract_answer(question, text)
    meta: dict = {
        "prompt": completion.prompt,
        "completion": text,
        "stripped_answer_text": span.stripped_tail(text),
        "finish_reason": completion.finish_reason,
        "backend": backend_label,
    }
    if completion.token_ids is not None:
        meta["completion_token_ids"] = list(completion.token_ids)
        meta["trace_token_start"] = kept[0][0] if kept else 0
    record = TraceRecord(
        id=question.id,
        benchmark=question.benchmark,
        question=question.question,
        trace=span.trace(text),
        frontier_model=model_name,
        token_texts=tuple(t for _, t in kept),
        token_logprobs=tuple(completion.token_logprobs[i] for i, _ in kept),
        answer=answer,
        correct=is_correct(question, answer, humaneval_timeout=humaneval_timeout),
        meta=meta,
    )
    return record, (NO_REASONING if not record.trace.strip() else None)
