"""`rbridge traces validate`: is a trace pack fit to score, and what does it cover?

Errors (the first stops validation, naming file, line or id, and field): a record that breaks the
schema (tokens that do not spell the trace, positive logprobs, ...), a missing frontier token
list (unless `--text-only`), an id that is not a question of its benchmark.

Warnings (reported with the first few ids): a record question that differs from the benchmark's,
a trace that still ends with a final-answer line, records without an answer or correctness, and
records whose frontier (or confidence) model is not the one most records of the pack have.
Coverage is the share of the benchmark's questions with a trace. With `--min-coverage`, lower
coverage fails; without it, coverage below `LOW_COVERAGE` is a warning (a benchmark's score
would rest on a small share of its questions). With `--strict`, any warning fails.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.questions.source import QuestionSource, questions_for
from rbridge_tasks.questions.sources import normalise_text
from rbridge_tasks.records.answer_lines import scored_span
from rbridge_tasks.records.files import read_pack
from rbridge_tasks.traces.stats import summarise

SHOWN_IDS = 5
# Below this share of a benchmark's questions, a pack is flagged unless `--min-coverage` sets the
# bar; the released MMLU-Pro STEM traces cover 48% of MMLU-Pro, the others 99-100%.
LOW_COVERAGE = 0.25


@dataclass
class BenchmarkReport:
    benchmark: str
    questions: int
    coverage: float
    warnings: dict[str, list[str]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def low_coverage(self) -> bool:
        return self.coverage < LOW_COVERAGE


@dataclass
class ValidationReport:
    path: str
    benchmarks: list[BenchmarkReport]

    @property
    def warning_count(self) -> int:
        return sum(len(ids) for b in self.benchmarks for ids in b.warnings.values())

    def failures(self, *, min_coverage: float | None, strict: bool) -> list[str]:
        """Why the pack fails; `min_coverage` None: the user set no bar, so low coverage is a
        warning."""
        warnings = self.warning_count
        if min_coverage is None:
            out = []
            warnings += sum(b.low_coverage for b in self.benchmarks)
        else:
            out = [
                f"{b.benchmark}: coverage {b.coverage:.2%} is below --min-coverage "
                f"{min_coverage:.2%}"
                for b in self.benchmarks
                if b.coverage < min_coverage
            ]
        if strict and warnings:
            out.append(f"{warnings} warning(s) under --strict")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "benchmarks": {
                b.benchmark: {
                    "questions": b.questions,
                    "coverage": b.coverage,
                    "low_coverage": b.low_coverage,
                    "warnings": {
                        k: {"count": len(v), "ids": v[:SHOWN_IDS]} for k, v in b.warnings.items()
                    },
                    "stats": b.stats,
                }
                for b in self.benchmarks
            },
        }


def validate_pack(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    text_only: bool = False,
    source: QuestionSource | None = None,
) -> ValidationReport:
    """Check a pack against its benchmarks' questions (`source` names those of a benchmark that
    is not one of the six)."""
    path = Path(path)
    records = read_pack(path, require_tokens=not text_only)
    if not records:
        raise RBridgeError(f"{path}: no trace records")
    reports = []
    for benchmark in sorted({r.benchmark for r in records}):
        mine = [r for r in records if r.benchmark == benchmark]
        questions = {q.id: q for q in questions_for(benchmark, data_dir, source)}
        warnings: dict[str, list[str]] = {}
        models = Counter(r.frontier_model for r in mine)
        if len(models) > 1:  # e.g. a resumed `confidences` run with another model
            usual = models.most_common(1)[0][0]
            warnings[f"frontier_model is not the pack's usual {usual!r} (mixed models)"] = [
                r.id for r in mine if r.frontier_model != usual
            ]
        for record in mine:
            question = questions.get(record.id)
            if question is None:
                raise located(
                    str(path),
                    f"not a {benchmark} question id (the benchmark has {len(questions)} questions)",
                    record_id=record.id,
                    field="id",
                )
            problems = {
                "question text differs from the benchmark's": normalise_text(record.question)
                != normalise_text(question.question),
                # a paper-format trace is the JSON reply's reasoning: its answer has its own key
                "trace still ends with a final-answer line": "reasoning_span" not in record.meta
                and scored_span(record.trace).stripped_tail(record.trace).strip() != "",
                "no answer": record.answer is None,
                "no correctness flag": record.correct is None,
            }
            for problem, present in problems.items():
                if present:
                    warnings.setdefault(problem, []).append(record.id)
        reports.append(
            BenchmarkReport(
                benchmark, len(questions), len(mine) / len(questions), warnings, summarise(mine)
            )
        )
    return ValidationReport(str(path), reports)
