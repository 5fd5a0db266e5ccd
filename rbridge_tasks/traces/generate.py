"""`rbridge traces generate`: frontier traces for a benchmark, resumable and crash safe.

Each finished question is appended to the output at once (one complete line, fsynced), so a
crash or Ctrl-C loses only the work in flight, and re-running the same command skips every id
already in the file. Questions deliberately left out (wrong answers under `--only-correct`,
completions with no reasoning before their answer, with `--skip-too-long` prompts that leave
no room for `--max-new-tokens` in a local model's context) go to `FILE.skipped.jsonl` with the
reason, so a resumed run does not generate them again.

A record's `trace` is the completion without leading whitespace and without its final-answer
line (`scored_span.py`); its frontier tokens are cut at the same characters. `meta` keeps the
prompt as sent, the raw completion, the stripped tail and, for local models, the completion's
token ids with the index of the first one kept in the trace. With `prompt_style="paper"` the
record is the reply's `reasoning` instead (`paper.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rbridge_tasks.core.errors import located
from rbridge_tasks.core.jsonl import iter_jsonl
from rbridge_tasks.questions.sources import Question
from rbridge_tasks.records.answer_lines import scored_span
from rbridge_tasks.records.files import TraceAppender, append_line, check_tail, settle_tail
from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.records.token_text import tokens_in_span
from rbridge_tasks.traces.answers import extract_answer, is_correct
from rbridge_tasks.traces.batches import batches_with_work
from rbridge_tasks.traces.completions import Completion, GenerationBackend, GenerationRequest
from rbridge_tasks.traces.paper import paper_record
from rbridge_tasks.traces.prompts import FrontierPrompt, frontier_prompt

SKIPPED_SUFFIX = ".skipped.jsonl"
NO_REASONING = "no reasoning before the final answer"
INCORRECT = "incorrect answer (--only-correct)"
TOO_LONG = "longer than the model's context (--skip-too-long)"


@dataclass
class GenerateSummary:
    questions: int
    already_done: int
    written: int = 0
    correct: int = 0
    skipped: Counter = field(default_factory=Counter)


class SkipLog:
    """Ids left out on purpose, one JSON line each, appended like the traces themselves (under
    the lock of the traces file, so open it inside its `TraceAppender`)."""

    def __init__(self, path: Path):
        self.path = path
        self.keys: set[tuple[str, str]] = set()
        if not path.exists():
            return
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        try:
            tail = check_tail(fd, path, b'{"benchmark": ')
            for n, entry in iter_jsonl(path, torn_tail_ok=True):
                try:
                    self.keys.add((entry["benchmark"], entry["id"]))
                except (KeyError, TypeError) as exc:
                    raise located(str(path), f"not a skip entry ({exc})", line=n) from exc
            settle_tail(fd, path, tail)
        finally:
            os.close(fd)

    def add(
        self, question: Question, reason: str, answer: str | None, detail: str | None = None
    ) -> None:
        entry = {
            "benchmark": question.benchmark,
            "id": question.id,
            "reason": reason,
            "answer": answer,
        }
        if detail is not None:
            entry["detail"] = detail
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            append_line(
                fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"), self.path
            )
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
    prompt_style: str = "cot",
    prompt_template: str | None = None,
    skip_too_long: bool = False,
) -> GenerateSummary:
    out_path = Path(out_path)
    prompt = partial(frontier_prompt, style=prompt_style, template=prompt_template)
    settings = generation_settings(backend, backend_label)
    if prompt_style != "cot":
        settings["prompt"] = prompt_style
    if prompt_template is not None:  # a resumed run with another template is refused
        settings["prompt_template_sha256"] = hashlib.sha256(prompt_template.encode()).hexdigest()
    with TraceAppender(out_path, settings=("generation_settings", settings)) as appender:
        skip_log = SkipLog(out_path.with_name(out_path.name + SKIPPED_SUFFIX))
        done = appender.done_ids | skip_log.keys
        summary = GenerateSummary(
            len(questions), sum((q.benchmark, q.id) in done for q in questions)
        )
        # local models know their context; asked on every run (a resumed one too) so that the
        # over-long questions never join a batch
        too_long = getattr(backend, "too_long", None) if skip_too_long else None
        unfit: set[tuple[str, str]] = set()
        for q in questions if too_long is not None else ():
            key = (q.benchmark, q.id)
            if key not in appender.done_ids and (
                problem := too_long(prompt(q), None, f"question {q.id!r}")
            ):
                unfit.add(key)
                if key not in done:
                    skip_log.add(q, TOO_LONG, None, problem)
                    summary.skipped[TOO_LONG] += 1
                    done.add(key)
        bar = tqdm(
            total=len(questions),
            initial=summary.already_done + summary.skipped[TOO_LONG],
            unit="question",
            desc=f"generate {questions[0].benchmark if questions else ''}",
            disable=not progress,
        )
        try:
            for question, completion in _completions(backend, questions, done, prompt, unfit):
                detail = None
                if prompt_style == "paper":  # retries a reply that breaks the format
                    record, reason, detail = paper_record(
                        question, completion, backend, backend_label, humaneval_timeout
                    )
                else:
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
                    skip_log.add(question, reason, record and record.answer, detail)
                    summary.skipped[reason] += 1
                bar.update(1)
        finally:
            bar.close()
    return summary


def generation_settings(backend: GenerationBackend, backend_label: str) -> dict[str, Any]:
    """What decides a generated record besides its question, stored in each record's meta so a
    resumed run with other settings (another model, --max-new-tokens, stops) is refused."""
    settings: dict[str, Any] = {"backend": backend_label, "frontier_model": backend.model_name}
    for name in ("max_new_tokens", "stops", "prompt_format", "api"):
        if hasattr(backend, name):
            settings[name] = getattr(backend, name)
    return settings


def _completions(
    backend: GenerationBackend,
    questions: Sequence[Question],
    done: set[tuple[str, str]],
    prompt: Callable[[Question], FrontierPrompt],
    unfit: set[tuple[str, str]],
) -> Iterator[tuple[Question, Completion]]:
    """Completions of the questions not done yet, in question order (local backends: in the
    fixed batches of `batches.py`, so a resumed run is bit-identical to an uninterrupted one)."""

    def is_done(question: Question) -> bool:
        return (question.benchmark, question.id) in done

    def requests(chunk: Sequence[Question]) -> list[GenerationRequest]:
        return [GenerationRequest(q.id, prompt(q)) for q in chunk]

    if backend.batch_size is None:
        pending = [q for q in questions if not is_done(q)]
        yield from zip(pending, backend.complete(requests(pending)), strict=True)
        return
    for work in batches_with_work(questions, backend.batch_size, is_done):
        batch = [q for q in work if (q.benchmark, q.id) not in unfit]
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
