"""Where a benchmark's questions come from: one of the six, a question file, or an lm-eval task.

The task options (`--metadata benchmark=... questions=... source_task=...`) and `rbridge traces`
(`--benchmark`, `--questions`, `--task`) both describe a source with this one type, so a trace
pack is generated for exactly the questions a task scores.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.question_file import QuestionFields, load_question_file
from rbridge_tasks.questions.sources import (
    ANSWER_TYPES,
    BENCHMARK_NAME,
    BENCHMARK_NAMES,
    Question,
    check_benchmark,
    load_questions,
)


@dataclass(frozen=True)
class QuestionSource:
    """A benchmark name and where its questions are read from.

    With neither `questions` nor `source_task`, `benchmark` is one of the six (questions from a
    `data_dir` laid out like `shared/data/`, else the hub); otherwise it is the user's own name
    for a question file (`questions`, read with `fields`) or for lm-eval task `source_task`
    (found in lm-eval's tasks and `include_path`; ids from `fields.id`, else the document index).
    """

    benchmark: str
    questions: str | None = None
    fields: QuestionFields = field(default_factory=QuestionFields)
    source_task: str | None = None
    include_path: tuple[str, ...] = ()
    answer_type: str | None = None

    def __post_init__(self) -> None:
        if self.questions and self.source_task:
            raise RBridgeError(
                "name one source of questions: a question file (questions=...) or an lm-eval "
                "task (source_task=...), not both"
            )
        if self.builtin:
            check_benchmark(self.benchmark)
        else:
            if not BENCHMARK_NAME.fullmatch(self.benchmark):
                raise RBridgeError(
                    f"benchmark name {self.benchmark!r}: use letters, digits, '_', '.' or '-' "
                    "(it names the trace records and the pack's files)"
                )
            if self.benchmark in BENCHMARK_NAMES:
                raise RBridgeError(
                    f"benchmark name {self.benchmark!r} is one of the six built-in benchmarks; "
                    "give your own questions another name"
                )
        if self.answer_type is not None and self.answer_type not in ANSWER_TYPES:
            raise RBridgeError(
                f"answer_type={self.answer_type!r}: expected one of {list(ANSWER_TYPES)}"
            )
        if self.answer_type == "code" and not self.builtin:
            raise RBridgeError(
                "answer_type=code: code answers are checked by running HumanEval's own tests, "
                "which another benchmark lacks; use answer_type=text"
            )

    @property
    def builtin(self) -> bool:
        return not self.questions and not self.source_task

    def load(self, data_dir: str | Path | None = None) -> list[Question]:
        """The benchmark's questions, in its own order."""
        if self.questions:
            return load_question_file(self.questions, self.benchmark, self.fields, self.answer_type)
        if self.source_task:
            from rbridge_tasks.questions.lm_eval_source import load_lm_eval_questions

            return load_lm_eval_questions(
                self.source_task,
                self.benchmark,
                id_field=self.fields.id,
                include_path=self.include_path,
                answer_type=self.answer_type,
            )
        return load_questions(self.benchmark, data_dir)

    def describe(self) -> str:
        if self.questions:
            return f"question file {self.questions}"
        if self.source_task:
            return f"lm-eval task {self.source_task}"
        return f"benchmark {self.benchmark}"


def source_from_options(
    benchmark: str | None,
    questions: str | None = None,
    source_task: str | None = None,
    *,
    id_field: str | None = None,
    question_field: str | None = None,
    answer_field: str | None = None,
    choices_field: str | None = None,
    answer_type: str | None = None,
    include_path: Sequence[str] = (),
) -> QuestionSource:
    """One `QuestionSource` from the options both the task and `rbridge traces` take; an lm-eval
    task's benchmark name defaults to the task's."""
    if source_task and not benchmark:
        benchmark = source_task
    if not benchmark:
        raise RBridgeError("name the benchmark (benchmark=NAME)")
    defaults = QuestionFields()
    fields = QuestionFields(
        id=id_field or (None if source_task else defaults.id),  # lm-eval: the document index
        question=question_field or defaults.question,
        answer=answer_field or defaults.answer,
        choices=choices_field or defaults.choices,
    )
    return QuestionSource(
        benchmark=benchmark,
        questions=questions,
        fields=fields,
        source_task=source_task,
        include_path=tuple(include_path),
        answer_type=answer_type,
    )


def questions_for(
    benchmark: str, data_dir: str | Path | None = None, source: QuestionSource | None = None
) -> list[Question]:
    """The questions of a benchmark that trace records name: from `source` when it is that
    benchmark's, else one of the six (records of another benchmark need their source named)."""
    if source is not None and source.benchmark == benchmark:
        return source.load(data_dir)
    if benchmark not in BENCHMARK_NAMES:
        close = difflib.get_close_matches(benchmark, BENCHMARK_NAMES, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}? Else " if close else ""
        raise RBridgeError(
            f"records name benchmark {benchmark!r}, not one of the six built-in ones "
            f"({', '.join(BENCHMARK_NAMES)}); {hint}name its questions with --questions FILE "
            f"--benchmark {benchmark}, or --task LM_EVAL_TASK"
        )
    return load_questions(benchmark, data_dir)
