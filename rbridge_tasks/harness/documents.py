"""The documents an rBridge task scores: benchmark questions joined with their frontier traces."""

from __future__ import annotations

import logging
from typing import Any

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.harness.options import TaskSettings
from rbridge_tasks.questions.sources import (
    Question,
    normalise_text,
    proxy_prompt,
    question_body,
    reference_answer,
)
from rbridge_tasks.records.packs import find_records
from rbridge_tasks.records.schema import TraceRecord

logger = logging.getLogger(__name__)


def build_documents(settings: TaskSettings) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One document per trace, in the benchmark's order, with its frontier confidences; and
    where they came from, for the results file's `configs[task].metadata`."""
    records, origin = find_records(settings.traces, settings.benchmark, settings.released_mapping)
    questions = settings.source.load(settings.data_dir)
    position = {q.id: i for i, q in enumerate(questions)}
    unknown = [r.id for r in records if r.id not in position]
    if unknown:
        raise RBridgeError(
            f"{origin}: {len(unknown)} trace id(s) are not {settings.benchmark} question ids, "
            f"e.g. {unknown[:5]}; the benchmark's ids look like {[q.id for q in questions[:3]]}"
        )
    records.sort(key=lambda r: position[r.id])
    without_trace = len(position.keys() - {r.id for r in records})
    if without_trace:
        logger.warning(
            "%s: %d of the %d questions have no trace in %s; they are not scored",
            settings.benchmark,
            without_trace,
            len(questions),
            origin,
        )
    if settings.check_questions:
        _check_questions(records, questions, position, origin)
    fewshot = None
    if settings.context == "fewshot":
        from rbridge_tasks.questions.fewshot import FewshotContext

        if not settings.source.builtin:
            raise RBridgeError(
                f"context=fewshot: exemplars exist for the six built-in benchmarks only; "
                f"{settings.benchmark} ({settings.source.describe()}) takes context=qa (an "
                "lm-eval task's own prompt, its few-shot included) or context=concat"
            )

        fewshot = FewshotContext.load(settings.benchmark, settings.data_dir, settings.fewshot_k)
    docs = []
    for record in records:
        question = questions[position[record.id]]
        if fewshot is not None:
            prompt = fewshot.prompt(question)
        elif settings.context == "concat":
            prompt = question_body(question)
        else:
            prompt = proxy_prompt(question)
        own_context = settings.context == "qa" and question.prompt is not None
        docs.append(
            {
                **({"delimiter": question.delimiter} if own_context else {}),
                "id": record.id,
                "benchmark": record.benchmark,
                "question": question.question,
                "gold": question.gold,
                "gold_text": reference_answer(question),
                "prompt": prompt,
                "trace": record.trace,
                "frontier_model": record.frontier_model,
                # token lengths (in characters) suffice to map letters to frontier tokens
                "frontier_token_chars": [len(text) for text in record.token_texts],
                "frontier_logprobs": list(record.token_logprobs),
                "answer": record.answer,
                "correct": record.correct,
            }
        )
    provenance = {
        "questions_source": settings.source.describe(),
        "traces_source": origin,
        "frontier_models": sorted({r.frontier_model for r in records}),
        "pack_documents": len(records),
        "benchmark_questions": len(questions),
        "questions_without_trace": without_trace,
    }
    return docs, provenance


def _check_questions(
    records: list[TraceRecord], questions: list[Question], position: dict[str, int], origin: str
) -> None:
    """Guard against traces joined to the wrong question (ids from another split or ordering)."""
    for record in records:
        expected = normalise_text(questions[position[record.id]].question)
        if expected not in normalise_text(record.question):
            raise RBridgeError(
                f"{origin}: id {record.id!r}, field 'question': the trace's question "
                f"{record.question[:80]!r} does not contain the benchmark's question "
                f"{expected[:80]!r}; the ids may come from another split or ordering (pass "
                "--metadata check_questions=false to skip this check)"
            )
