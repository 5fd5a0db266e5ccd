"""`rbridge traces import`: trace records from traces made elsewhere.

Formats:
- `released`: the `trillionlabs/rBridge` layout (traces + token logprobs), through
  `rbridge_tasks.records.released.read_released` and its field mapping.
- `rereading`: result files of Tebmer/Rereading-LLM-Reasoning (GPT-4o-mini on GSM8K and
  CommonsenseQA); ids are 0-based row indexes into the benchmark file.
- `zero-shot-cot-log`: run logs of kojima-takeshi188/zero_shot_cot (text-davinci-002), joined
  to the benchmark by question text (the logs are in shuffled order).
- `mmlu-pro-outputs`: TIGER-AI-Lab/MMLU-Pro `eval_results` model outputs (a .zip or .json).
- `jsonl`: any JSONL with an id and a text field (plain text traces; dotted names read nested
  fields; with `--ids-are-row-indexes` and no id field, records are the rows in order).

Every imported trace is joined to its benchmark question (an id or question text that does not
match is an error naming the file and line), stripped of its final answer as `generate` does,
and its answer checked against the gold. Text-only imports have no frontier tokens yet: run
`rbridge traces confidences` on them. Records come out in the benchmark's question order.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import MISSING, field_at, iter_jsonl
from rbridge_tasks.questions.sources import (
    Question,
    check_benchmark,
    load_questions,
    normalise_text,
)
from rbridge_tasks.records.answer_lines import scored_span
from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.traces.answers import extract_answer, is_correct

FORMATS = ("released", "rereading", "zero-shot-cot-log", "mmlu-pro-outputs", "jsonl")
REREADING_GENERATIONS = ("cot", "vanilla")
NO_REASONING = "no reasoning before the final answer"
INCORRECT = "incorrect answer (--only-correct)"
UNGRADED = "no correctness flag (--only-correct)"
# zero_shot_cot's utils.py maps its --model names to these OpenAI engines.
_ZERO_SHOT_COT_ENGINES = {
    "gpt3": "text-ada-001",
    "gpt3-medium": "text-babbage-001",
    "gpt3-large": "text-curie-001",
    "gpt3-xl": "text-davinci-002",
}


@dataclass
class ImportResult:
    """The records kept, and how many were left out for each reason (`NO_REASONING`,
    `INCORRECT`, `UNGRADED`), so the command can say what it dropped instead of hiding it."""

    records: list[TraceRecord]
    skipped: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class _Text:
    """One imported trace before stripping: the question it answers and the raw text."""

    question: Question
    row: int  # the question's row in the benchmark file: records are sorted by it
    text: str
    author_model: str
    meta: dict[str, Any]
    # The source's own final answer (None: it gave none) when it states one; else extracted.
    source_answer: str | None = None
    answer_from_source: bool = False


def import_released(
    root: str | Path,
    benchmark: str,
    mapping: str | Path | None = None,
    *,
    only_correct: bool = False,
) -> ImportResult:
    """Records of the authors' released layout under `root` (`mapping`: a `ReleasedMapping`
    file for a layout that differs), without those with no reasoning and, with
    `only_correct`, those not judged correct.

    Raises
    ------
    RBridgeError
        From `read_released`: a missing or malformed file, named with its record and field.
    """
    from rbridge_tasks.records.released import ReleasedMapping, read_released

    result = ImportResult([])
    for record in read_released(root, benchmark, ReleasedMapping.load(mapping)):
        reason = _skip_reason(record, only_correct)
        if reason is None:
            result.records.append(record)
        else:
            result.skipped[reason] += 1
    return result


def _skip_reason(record: TraceRecord, only_correct: bool) -> str | None:
    if not record.trace.strip():
        return NO_REASONING
    if only_correct and record.correct is None:
        return UNGRADED
    if only_correct and not record.correct:
        return INCORRECT
    return None


def import_text_traces(
    fmt: str,
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    benchmark: str | None = None,
    author_model: str | None = None,
    generation: str = "cot",
    id_field: str = "id",
    text_field: str = "trace",
    answer_field: str | None = None,
    ids_are_row_indexes: bool = False,
    only_correct: bool = False,
    humaneval_timeout: float = 10.0,
) -> ImportResult:
    """Text-only records from one of the text formats, sorted in benchmark order.

    `fmt` is one of `FORMATS` but `released`; `generation` picks the `rereading` column,
    `id_field`/`text_field`/`answer_field` the `jsonl` fields; HumanEval answers are judged by
    running the tests, each run limited to `humaneval_timeout` seconds.

    Raises
    ------
    RBridgeError
        A missing file, a format's required option missing, or a row whose id or question
        matches no benchmark question (naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise RBridgeError(f"traces file not found: {path}")
    if fmt == "rereading":
        texts = _rereading(path, data_dir, generation, author_model)
    elif fmt == "zero-shot-cot-log":
        texts = _zero_shot_cot_log(path, data_dir, benchmark, author_model)
    elif fmt == "mmlu-pro-outputs":
        texts = _mmlu_pro_outputs(path, data_dir, author_model)
    elif fmt == "jsonl":
        if benchmark is None or author_model is None:
            raise RBridgeError("--format jsonl needs --benchmark and --author-model")
        texts = _plain_jsonl(
            path,
            data_dir,
            check_benchmark(benchmark),
            author_model,
            id_field,
            text_field,
            answer_field,
            ids_are_row_indexes,
        )
    else:
        raise RBridgeError(f"unknown import format {fmt!r}; expected one of {list(FORMATS)}")
    result = ImportResult([])
    seen: dict[tuple[str, str], str] = {}
    kept: list[tuple[tuple[str, int], TraceRecord]] = []
    for item in texts:
        key = (item.question.benchmark, item.question.id)
        where = item.meta["source_location"]
        if key in seen:
            raise RBridgeError(
                f"{where}: a second trace for {item.question.benchmark} question "
                f"{item.question.id!r} (the first is at {seen[key]})"
            )
        seen[key] = where
        record = _record(item, humaneval_timeout)
        reason = _skip_reason(record, only_correct)
        if reason is None:
            kept.append(((record.benchmark, item.row), record))
        else:
            result.skipped[reason] += 1
    result.records = [record for _, record in sorted(kept, key=lambda pair: pair[0])]
    return result


def _record(item: _Text, humaneval_timeout: float) -> TraceRecord:
    question = item.question
    span = scored_span(item.text)
    answer = item.source_answer if item.answer_from_source else extract_answer(question, item.text)
    meta = {
        **item.meta,
        "trace_author_model": item.author_model,
        "completion": item.text,
        "stripped_answer_text": span.stripped_tail(item.text),
    }
    return TraceRecord(
        id=question.id,
        benchmark=question.benchmark,
        question=question.question,
        trace=span.trace(item.text),
        frontier_model=item.author_model,
        answer=answer,
        correct=is_correct(question, answer, humaneval_timeout=humaneval_timeout),
        meta=meta,
    )


def _check_same_question(where: str, ours: str, theirs: str) -> None:
    if normalise_text(ours) != normalise_text(theirs):
        raise RBridgeError(
            f"{where}: field 'question': the trace's question {theirs[:60]!r}... "
            f"is not the benchmark's {ours[:60]!r}...; wrong benchmark file or "
            f"row order?"
        )


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for n, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise located(str(path), "expected a JSON object", line=n)
        yield n, row


def _by_row(questions: Sequence[Question], index: Any, where: str) -> tuple[int, Question]:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(questions):
        raise RBridgeError(
            f"{where}: field 'id': {index!r} is not a row index of the "
            f"{len(questions)} {questions[0].benchmark} questions"
        )
    return index, questions[index]


def _rows_by(key, questions: Sequence[Question]) -> dict[str, tuple[int, Question]]:
    return {key(q): (row, q) for row, q in enumerate(questions)}


# --- Rereading-LLM-Reasoning (GPT-4o-mini) ----------------------------------------------------


def _rereading(path: Path, data_dir, generation: str, author_model: str | None) -> Iterator[_Text]:
    """`cot` by default: its prompt asks for step-by-step reasoning, and most CommonsenseQA
    `vanilla` generations are a bare `\\boxed{X}` with no reasoning to score."""
    if generation not in REREADING_GENERATIONS:
        raise RBridgeError(
            f"unknown generation {generation!r}; expected one of {list(REREADING_GENERATIONS)}"
        )
    match = re.search(r"_(gpt-[^_]+|[a-z0-9.-]+-\d{4}-\d{2}-\d{2})_topp", path.name)
    author = author_model or (match.group(1) if match else None)
    if author is None:
        raise RBridgeError(f"{path}: cannot tell the model from the file name; pass --author-model")
    questions: dict[str, list[Question]] = {}
    for n, row in _read_jsonl(path):
        where = f"{path}, line {n}"
        if "target" in row and "input" in row:
            benchmark, question_text = "gsm8k", row["input"]
        elif "answerKey" in row and isinstance(row.get("question"), Mapping):
            benchmark, question_text = "csqa", row["question"].get("stem", "")
        else:
            raise RBridgeError(
                f"{where}: neither a GSM8K (input/target) nor a CommonsenseQA "
                f"(question/answerKey) record; fields: {sorted(row)}"
            )
        if benchmark not in questions:
            questions[benchmark] = load_questions(benchmark, data_dir)
        index, question = _by_row(questions[benchmark], row.get("id"), where)
        _check_same_question(where, question.question, question_text)
        try:
            output = row[generation]
            text = output["generation"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise RBridgeError(
                f"{where}: field {generation!r}: no generation text ({exc!r})"
            ) from exc
        yield _Text(
            question,
            index,
            text,
            author,
            {
                "source": str(path),
                "source_location": where,
                "source_generation": generation,
                "source_answer": output.get("answer"),
                "source_score": output.get("score"),
            },
        )


# --- zero_shot_cot logs (text-davinci-002) ----------------------------------------------------

_LOG_BLOCK = re.compile(
    r"^Q: (?P<q>.*?)\nA: (?P<a>.*?)\npred_before : .*?\npred_after : (?P<pred>.*?)\n"
    r"(?:.*?\n)*?GT : (?P<gt>.*?)\n",
    re.S | re.M,
)


def _zero_shot_cot_log(
    path: Path, data_dir, benchmark: str | None, author_model: str | None
) -> Iterator[_Text]:
    text = path.read_text(encoding="utf-8")
    header = re.search(r"^Namespace\((.*)\)$", text, re.M)
    if header is None:
        raise RBridgeError(f"{path}: no 'Namespace(...)' header line; not a zero_shot_cot log")
    settings = dict(
        re.findall(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,]+)", header.group(1))
    )

    def setting(name: str) -> str:
        if name not in settings:
            raise RBridgeError(f"{path}: the Namespace header has no {name!r}")
        return _python_string(settings[name])

    dataset = setting("dataset")
    benchmark = benchmark or {"gsm8k": "gsm8k", "commonsensqa": "csqa"}.get(dataset)
    if benchmark is None:
        raise RBridgeError(f"{path}: dataset {dataset!r} is not one of ours; pass --benchmark")
    check_benchmark(benchmark)
    trigger, answer_trigger = setting("cot_trigger"), setting("direct_answer_trigger")
    model = setting("model")
    author = author_model or _ZERO_SHOT_COT_ENGINES.get(model, model)
    by_text = _rows_by(lambda q: normalise_text(q.question), load_questions(benchmark, data_dir))
    for match in _LOG_BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        where = f"{path}, line {line}"
        question_text = match.group("q").split(" Answer Choices:")[0]
        found = by_text.get(normalise_text(question_text))
        if found is None:
            raise RBridgeError(
                f"{where}: field 'Q': no {benchmark} question has this text: {question_text[:80]!r}"
            )
        answer_part = match.group("a")
        if not answer_part.startswith(trigger):
            raise RBridgeError(f"{where}: the answer does not start with the trigger {trigger!r}")
        # The chain of thought ends where the pipeline appended its answer trigger (the
        # answer call's own output may repeat the trigger, so the first one counts).
        reasoning = answer_part[len(trigger) :].partition(answer_trigger)[0]
        # The run's answer is its second call's (`pred_after`; empty when it found none).
        yield _Text(
            found[1],
            found[0],
            reasoning,
            author,
            {
                "source": str(path),
                "source_location": where,
                "source_gt": match.group("gt"),
                "max_length_cot": int(setting("max_length_cot")),
            },
            source_answer=match.group("pred").strip() or None,
            answer_from_source=True,
        )


def _python_string(value: str) -> str:
    value = value.strip()
    if value[:1] in "'\"" and value[-1:] == value[:1]:
        return value[1:-1].encode("utf-8").decode("unicode_escape")
    return value


# --- MMLU-Pro eval_results --------------------------------------------------------------------


def _mmlu_pro_outputs(path: Path, data_dir, author_model: str | None) -> Iterator[_Text]:
    match = re.match(r"model_outputs_(.+?)_\d+shots", path.name)
    author = author_model or (match.group(1) if match else None)
    if author is None:
        raise RBridgeError(f"{path}: cannot tell the model from the file name; pass --author-model")
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".json")]
            if len(names) != 1:
                raise RBridgeError(f"{path}: expected one .json file inside, found {names}")
            source, raw = f"{path}!{names[0]}", archive.read(names[0])
    else:
        source, raw = str(path), path.read_bytes()
    try:
        rows = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise located(source, f"invalid JSON ({exc.msg})", line=exc.lineno) from exc
    if not isinstance(rows, list):
        raise RBridgeError(f"{source}: expected a JSON list of model outputs")
    by_id = _rows_by(lambda q: q.id, load_questions("mmlu_pro", data_dir))
    for n, row in enumerate(rows):
        where = f"{source} [{n}]"
        if not isinstance(row, dict) or "question_id" not in row or "model_outputs" not in row:
            raise RBridgeError(f"{where}: expected an object with question_id and model_outputs")
        found = by_id.get(str(row["question_id"]))
        if found is None:
            raise RBridgeError(
                f"{where}: field 'question_id': {row['question_id']!r} is not an "
                f"MMLU-Pro test question"
            )
        _check_same_question(where, found[1].question, str(row.get("question", "")))
        yield _Text(
            found[1],
            found[0],
            str(row["model_outputs"]),
            author,
            {"source": source, "source_location": where, "source_pred": row.get("pred")},
        )


# --- plain JSONL ------------------------------------------------------------------------------


def _plain_jsonl(
    path: Path,
    data_dir,
    benchmark: str,
    author: str,
    id_field: str,
    text_field: str,
    answer_field: str | None,
    ids_are_row_indexes: bool,
) -> Iterator[_Text]:
    questions = load_questions(benchmark, data_dir)
    by_id = _rows_by(lambda q: q.id, questions)
    for position, (n, row) in enumerate(_read_jsonl(path)):
        where = f"{path}, line {n}"
        # without an id field, row indexes are the records' own order in the file
        required = (text_field,) if ids_are_row_indexes else (id_field, text_field)
        for name in required:
            if field_at(row, name) is MISSING:
                raise located(str(path), f"missing (fields: {sorted(row)})", line=n, field=name)
        raw_id = field_at(row, id_field)
        if ids_are_row_indexes:
            found = _by_row(questions, position if raw_id is MISSING else raw_id, where)
        else:
            found = by_id.get(str(raw_id))
            if found is None:
                raise located(
                    str(path),
                    f"{raw_id!r} is not a {benchmark} question id "
                    f"(use --ids-are-row-indexes for 0-based rows)",
                    line=n,
                    field=id_field,
                )
        text = field_at(row, text_field)
        if not isinstance(text, str):
            raise located(
                str(path), "must be a string", line=n, record_id=found[1].id, field=text_field
            )
        answer = None if answer_field is None else field_at(row, answer_field)
        answer = None if answer is MISSING else answer
        yield _Text(
            found[1],
            found[0],
            text,
            author,
            {"source": str(path), "source_location": where},
            source_answer=None if answer is None else str(answer),
            answer_from_source=answer_field is not None,
        )
