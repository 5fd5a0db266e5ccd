"""Any lm-eval task as the source of a benchmark's questions.

The questions are the task's evaluation documents, in its order; the proxy reads exactly the
task's own prompt before the trace (`fewshot_context`: `doc_to_text` with the few-shot examples
the task configures, drawn with lm-eval's default few-shot seed over every document in order, so
the same prompts come back at generation and at scoring), then its `target_delimiter`. A
multiple-choice task's options are labelled A, B, ... and its gold is the label of
`doc_to_target`; any other task's gold is its `doc_to_target` text. Ids are a configured document
field, else the document's index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, first_line
from rbridge_tasks.questions.question_file import LABELS
from rbridge_tasks.questions.sources import ANSWER_TYPES, Question, guess_answer_type

FEWSHOT_SEED = 1234  # lm-eval's default `fewshot_random_seed`


def load_lm_eval_questions(
    task_name: str,
    benchmark: str,
    *,
    id_field: str | None = None,
    include_path: Sequence[str] = (),
    answer_type: str | None = None,
) -> list[Question]:
    """The documents of lm-eval task `task_name` as questions of `benchmark`.

    `include_path` adds task folders to lm-eval's own (as `--include_path` does). `answer_type`
    (one of `ANSWER_TYPES`) says how answers are asked for and checked; by default as
    `guess_answer_type` says (a multiple-choice task has options, so `choice`).

    Raises
    ------
    RBridgeError
        An unknown task (with the closest names), a group instead of a task, a task lm-eval
        cannot build (its data missing offline), an id field that some document lacks.
    """
    task = _load_task(task_name, include_path)
    task.set_fewshot_seed(seed=FEWSHOT_SEED)
    multiple_choice = task.OUTPUT_TYPE == "multiple_choice"
    shots = task.config.num_fewshot or 0
    delimiter = task.config.target_delimiter if task.config.target_delimiter is not None else " "
    questions, seen = [], set()
    for index, doc in enumerate(task.eval_docs):
        question_id = str(index)
        if id_field is not None:
            if not isinstance(doc, dict) or doc.get(id_field) is None:
                raise RBridgeError(
                    f"lm-eval task {task_name}: document {index} has no field {id_field!r} for "
                    f"its id (its fields: {sorted(doc) if isinstance(doc, dict) else type(doc)})"
                )
            question_id = str(doc[id_field])
        if question_id in seen:
            raise RBridgeError(
                f"lm-eval task {task_name}: id {question_id!r} (field {id_field!r}) repeats; "
                "name a field that is unique per document, or none to use the document index"
            )
        seen.add(question_id)
        target = task.doc_to_target(doc)
        choices: tuple[tuple[str, str], ...] = ()
        if multiple_choice:
            options = task.doc_to_choice(doc)
            choices = tuple((LABELS[i], str(text)) for i, text in enumerate(options))
            gold = LABELS[target] if isinstance(target, int) else _label_of(target, choices)
        else:
            gold = str(target[0] if isinstance(target, list) else target)
        questions.append(
            Question(
                question_id,
                benchmark,
                str(task.doc_to_text(doc)).strip(),
                gold,
                choices,
                extra={"lm_eval_task": task_name},
                prompt=task.fewshot_context(
                    doc, num_fewshot=shots, gen_prefix=task.doc_to_prefix(doc)
                ),
                delimiter=delimiter,
            )
        )
    kind = answer_type or guess_answer_type(questions)
    if kind not in ANSWER_TYPES:
        raise RBridgeError(f"answer type {kind!r}: expected one of {list(ANSWER_TYPES)}")
    return [replace(q, answer_type=kind) for q in questions]


def _load_task(task_name: str, include_path: Sequence[str]) -> Any:
    import difflib

    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=list(include_path) or None)
    if task_name not in manager.all_tasks:
        close = difflib.get_close_matches(task_name, manager.all_tasks, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RBridgeError(f"no lm-eval task named {task_name!r}{hint}")
    if task_name not in manager.all_subtasks:
        raise RBridgeError(
            f"lm-eval {task_name!r} is a group or tag, not one task; name one of its tasks"
        )
    try:
        return manager.load([task_name])["tasks"][task_name]
    except Exception as exc:  # lm-eval's own loaders raise many types (datasets, hub, yaml)
        raise RBridgeError(
            f"lm-eval could not build its task {task_name!r} ({first_line(exc)}); offline, its "
            "data files must be where the task's YAML says (a local dataset_path/data_files)"
        ) from exc


def _label_of(target: Any, choices: tuple[tuple[str, str], ...]) -> str:
    text = str(target).strip()
    for label, option in choices:
        if text in (label, option.strip()):
            return label
    raise RBridgeError(f"gold answer {target!r} is not one of the options {choices}")
