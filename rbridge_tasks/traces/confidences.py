"""`rbridge traces confidences`: per-token logprobs for existing traces from any local causal LM.

Text-only traces (GPT-4o-mini's, text-davinci-002's, ...) have no frontier logprobs; teacher
forcing them through a model we can run gives every token a confidence, so they become scoreable,
and re-running with another model is the ablation over the choice of confidence model.

Each trace is read after a context, by default the same frontier prompt `generate` would send
for its question (joined to the benchmark by id, so multiple-choice options are included;
through the model's chat template when it has one). `--context record` uses the record's own
question text instead and needs no benchmark data. The trace text itself is never changed.
A trace longer than the model's context is an error naming it; with `--skip-too-long` it is
listed in `OUT.skipped.jsonl` (with both lengths) and the others go on.

`frontier_model` becomes the confidence model; `meta.trace_author_model` keeps who wrote the
text, `meta.trace_token_ids` the confidence model's token ids (one per frontier token).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.questions.source import QuestionSource, questions_for
from rbridge_tasks.questions.sources import Question
from rbridge_tasks.records.files import TraceAppender, read_traces
from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.traces.batches import batches_with_work
from rbridge_tasks.traces.completions import TeacherForcingBackend
from rbridge_tasks.traces.generate import SKIPPED_SUFFIX, TOO_LONG, SkipLog
from rbridge_tasks.traces.prompts import FrontierPrompt, frontier_prompt

CONTEXTS = ("prompt", "record")
# Meta of the tokens being replaced; stale once another model supplies the tokens.
_TOKEN_META = ("completion_token_ids", "trace_token_start", "trace_token_ids")


@dataclass
class ConfidenceSummary:
    records: int
    already_done: int  # in the output or its skipped file before this run
    written: int = 0
    skipped: Counter = field(default_factory=Counter)  # left out by this run, by reason


def add_confidences(
    in_path: str | Path,
    out_path: str | Path,
    model: TeacherForcingBackend,
    *,
    context: str = "prompt",
    data_dir: str | Path | None = None,
    source: QuestionSource | None = None,
    limit: int | None = None,
    progress: bool = True,
    skip_too_long: bool = False,
) -> ConfidenceSummary:
    if context not in CONTEXTS:
        raise RBridgeError(f"unknown context {context!r}; expected one of {list(CONTEXTS)}")
    in_path, out_path = Path(in_path), Path(out_path)
    if in_path.resolve() == out_path.resolve():
        raise RBridgeError(f"{in_path}: write the traces with confidences to a new file")
    records = read_traces(in_path, require_tokens=False)
    if limit is not None:
        records = records[:limit]
    questions = _questions_by_key(records, data_dir, source, in_path) if context == "prompt" else {}

    def context_of(record: TraceRecord) -> FrontierPrompt:
        if context == "prompt":
            return frontier_prompt(questions[(record.benchmark, record.id)])
        return frontier_prompt(_as_question(record))

    settings = {"confidence_model": model.model_name, "context": context}
    if hasattr(model, "prompt_format"):
        settings["prompt_format"] = model.prompt_format
    with TraceAppender(out_path, settings=("confidence_settings", settings)) as appender:
        skip_log = SkipLog(out_path.with_name(out_path.name + SKIPPED_SUFFIX))

        def is_done(record: TraceRecord) -> bool:
            key = (record.benchmark, record.id)
            return key in appender.done_ids or key in skip_log.keys

        summary = ConfidenceSummary(len(records), sum(map(is_done, records)))
        too_long = getattr(model, "too_long", None)  # local models know their context
        if skip_too_long and too_long is not None:  # before batching: the rest batch as before
            for record in records:
                if is_done(record):
                    continue
                label = f"{in_path}, id {record.id!r}"
                if problem := too_long(context_of(record), record.trace, label):
                    skip_log.add(_as_question(record), TOO_LONG, record.answer, problem)
                    summary.skipped[TOO_LONG] += 1
        bar = tqdm(
            total=len(records),
            initial=summary.already_done + summary.skipped.total(),
            unit="trace",
            desc=f"confidences {model.model_name}",
            disable=not progress,
        )
        try:
            for work in list(batches_with_work(records, model.batch_size, is_done)):
                batch = [r for r in work if (r.benchmark, r.id) not in skip_log.keys]
                scored = model.score(
                    [context_of(r) for r in batch],
                    [r.trace for r in batch],
                    [f"{in_path}, id {r.id!r}" for r in batch],
                )
                for record, tokens in zip(batch, scored, strict=True):
                    if is_done(record):
                        continue
                    appender.append(_with_confidences(record, tokens, model.model_name, context))
                    summary.written += 1
                    bar.update(1)
        finally:
            bar.close()
    return summary


def _as_question(record: TraceRecord) -> Question:
    return Question(record.id, record.benchmark, record.question, gold="")


def _with_confidences(record: TraceRecord, tokens, model_name: str, context: str) -> TraceRecord:
    meta = {k: v for k, v in record.meta.items() if k not in _TOKEN_META}
    meta.setdefault("trace_author_model", record.frontier_model)
    meta.update(
        confidence_model=model_name,
        confidence_context=context,
        trace_token_ids=list(tokens.token_ids),
    )
    return replace(
        record,
        frontier_model=model_name,
        token_texts=tokens.token_texts,
        token_logprobs=tokens.token_logprobs,
        meta=meta,
    )


def _questions_by_key(
    records: Sequence[TraceRecord],
    data_dir: str | Path | None,
    questions: QuestionSource | None,
    source: Path,
) -> dict[tuple[str, str], Question]:
    by_key: dict[tuple[str, str], Question] = {}
    for benchmark in sorted({r.benchmark for r in records}):
        by_key.update(
            ((q.benchmark, q.id), q) for q in questions_for(benchmark, data_dir, questions)
        )
    for record in records:
        if (record.benchmark, record.id) not in by_key:
            raise located(
                str(source),
                f"no {record.benchmark} question has this id, so its "
                f"prompt cannot be built (use --context record to read the trace "
                f"after the record's own question)",
                record_id=record.id,
                field="id",
            )
    return by_key
