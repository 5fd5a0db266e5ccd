"""A benchmark of your own: its questions from a JSONL or CSV file.

Each row gives a question id (or the row index, when there is no id field), the question, the
gold answer and, for multiple choice, the options: a list (labelled A, B, ...), a `{label: text}`
object, or in a CSV one cell of options separated by `|`. A multiple-choice gold may be the
label, the 0-based index of the option or the option's text; it is stored as the label. Field
names are options (dotted names reach into nested JSON objects), with the defaults below.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import MISSING, field_at, iter_jsonl, read_text
from rbridge_tasks.questions.sources import ANSWER_TYPES, Question, guess_answer_type

LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class QuestionFields:
    """Which field holds what; `id` None (or absent from the file) means the row index."""

    id: str | None = "id"
    question: str = "question"
    answer: str = "answer"
    choices: str | None = "choices"


def load_question_file(
    path: str | Path,
    benchmark: str,
    fields: QuestionFields = QuestionFields(),
    answer_type: str | None = None,
) -> list[Question]:
    """All questions of the file, in its order.

    `answer_type` (one of `ANSWER_TYPES`) says how answers are asked for and checked; by default
    as `guess_answer_type` says.

    Raises
    ------
    RBridgeError
        A missing or unreadable file, a row without a needed field (file, row and field named),
        repeated ids, an unknown answer type.
    """
    path = Path(path)
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise RBridgeError(f"answer type {answer_type!r}: expected one of {list(ANSWER_TYPES)}")
    rows = _rows(path)
    if not rows:
        raise RBridgeError(f"{path}: no questions in the file")
    use_id = fields.id is not None and any(_get(row, fields.id) is not None for _, row in rows)
    questions, seen = [], {}
    for index, (line, row) in enumerate(rows):
        where = {"line": line}

        def need(name: str | None, what: str, row=row, where=where) -> Any:
            value = _get(row, name) if name else None
            if value is None or (isinstance(value, str) and not value.strip()):
                raise located(str(path), f"missing {what}", **where, field=name)
            return value

        question_id = str(need(fields.id, "the question id")) if use_id else str(index)
        if question_id in seen:
            raise located(
                str(path), f"repeated question id (also on line {seen[question_id]})",
                **where, record_id=question_id, field=fields.id,
            )  # fmt: skip
        seen[question_id] = line
        choices = _choices(
            _get(row, fields.choices) if fields.choices else None, path, line, fields
        )
        gold = need(fields.answer, "the gold answer")
        if choices:
            gold = _gold_label(gold, choices, path, line, fields.answer)
        questions.append(
            Question(
                question_id,
                benchmark,
                str(need(fields.question, "the question")),
                str(gold),
                choices,
            )
        )
    kind = answer_type or guess_answer_type(questions)
    return [replace(q, answer_type=kind) for q in questions]


def _rows(path: Path) -> list[tuple[int, Mapping[str, Any]]]:
    if path.is_dir():
        raise RBridgeError(f"{path} is a folder; --questions takes a JSONL or CSV file")
    if not path.is_file():
        raise RBridgeError(f"question file not found: {path}")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        dialect = "excel-tab" if name.endswith(".tsv") else "excel"
        reader = csv.DictReader(io.StringIO(read_text(path)), dialect=dialect)
        try:
            return [(reader.line_num, row) for row in reader]  # a row's last line
        except csv.Error as exc:
            raise located(
                str(path), f"not a readable CSV table ({exc})", line=reader.line_num
            ) from None
    rows = []
    for line, row in iter_jsonl(path):
        if not isinstance(row, Mapping):
            raise located(str(path), f"expected a JSON object, got {type(row).__name__}", line=line)
        rows.append((line, row))
    return rows


def _get(row: Mapping[str, Any], name: str) -> Any:
    value = field_at(row, name)
    return None if value is MISSING else value


def _choices(
    value: Any, path: Path, line: int, fields: QuestionFields
) -> tuple[tuple[str, str], ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # a CSV cell: "option one | option two"
        value = [part.strip() for part in value.split("|")]
    if isinstance(value, Mapping):
        return tuple((str(label), str(text)) for label, text in value.items())
    if isinstance(value, Sequence) and len(value) <= len(LABELS):
        return tuple((LABELS[i], str(text)) for i, text in enumerate(value))
    raise located(
        str(path),
        "options must be a list (at most 26), an object {label: text} or a '|'-separated string",
        line=line,
        field=fields.choices,
    )


def _gold_label(
    gold: Any, choices: tuple[tuple[str, str], ...], path: Path, line: int, field: str
) -> str:
    labels = [label for label, _ in choices]
    text = str(gold).strip()
    if text in labels:
        return text
    if text.upper() in labels:
        return text.upper()
    if isinstance(gold, int) and not isinstance(gold, bool) and 0 <= gold < len(labels):
        return labels[gold]
    matches = [label for label, option in choices if option.strip() == text]
    if len(matches) == 1:
        return matches[0]
    raise located(
        str(path), f"the gold answer {gold!r} is neither an option label {labels}, an option's "
        "index nor one option's text", line=line, field=field,
    )  # fmt: skip
