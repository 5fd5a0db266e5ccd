"""The released `trillionlabs/rBridge` layout (`records.released`): default field names, a
mapping file for others, and a clear error when neither matches; through the task.

Its bad inputs, each one clear error naming the file, record and field; the mapping file's
checks; the shapes of rows and completions the reader also accepts. The key sets the released
files may have (their keys are not documented publicly): each plausible shape reads as exactly
the records of the plain shape (an `id`, a raw reply in `response`, one row per token); keys
that match nothing fail once, with the ways out."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
from pathlib import Path

import pytest
import yaml
from helpers import task_manager
from released_layout_fixture import RELEASED_FILES, config_folder, token_objects, write_config
from trace_fixtures import real_texts
from trace_fixtures import record as frontier_record

from rbridge_tasks.cli import main as rbridge_main
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.harness.documents import build_documents
from rbridge_tasks.harness.options import TaskSettings
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.answer_lines import scored_span
from rbridge_tasks.records.released import (
    CONFIG_OF_BENCHMARK,
    ReleasedMapping,
    inspect_released,
    read_released,
)

FIELDS = {
    "id": "id",
    "question": "question",
    "trace": "response",
    "answer": "pred",
    "correct": "correct",
    "tid": "id",
    "token": "token",
    "logprob": "logprob",
    "pos": "position",
}


def write_released(root: Path, records: list[dict], fields: dict[str, str]) -> Path:
    entries, rows = [], []
    for r in records:
        answer_line = "\nThe answer is 42."
        entries.append(
            {
                fields["id"]: r["id"],
                fields["question"]: r["question"],
                fields["trace"]: r["trace"] + answer_line,
                fields["answer"]: "42",
                fields["correct"]: False,
            }
        )
        tokens = [*r["frontier_tokens"], {"text": answer_line, "logprob": -0.01}]
        rows += [
            {
                fields["tid"]: r["id"],
                fields["token"]: t["text"],
                fields["logprob"]: t["logprob"],
                fields["pos"]: i,
            }
            for i, t in enumerate(tokens)
        ]
    random.Random(0).shuffle(rows)  # positions, not file order, give the token order
    write_config(root, "gsm8k", entries, rows)
    return root


@pytest.fixture(scope="module")
def records(frontier_dir):
    """Reasoning without its own closing answer, so the released copy's answer line is the tail."""
    return [
        frontier_record(frontier_dir, "gsm8k", i, q, scored_span(t).trace(t))
        for i, q, t in real_texts("gsm8k", 2)
    ]


def test_default_layout_is_read_and_the_answer_line_stripped(tmp_path, records):
    root = write_released(tmp_path, records, FIELDS)
    got = read_released(root, "gsm8k")
    assert [r.id for r in got] == [r["id"] for r in records]
    for rec, expected in zip(got, records, strict=True):
        assert rec.trace == expected["trace"]
        assert list(rec.token_logprobs) == [t["logprob"] for t in expected["frontier_tokens"]]
        assert rec.answer == "42" and rec.correct is False
        assert rec.meta["stripped_answer_text"] == "\nThe answer is 42."


def test_other_field_names_through_a_mapping_file(tmp_path, records):
    fields = {
        "id": "qid",
        "question": "prompt_text",
        "trace": "gen",
        "answer": "final",
        "correct": "ok",
        "tid": "qid",
        "token": "tok",
        "logprob": "lp",
        "pos": "step",
    }
    root = write_released(tmp_path / "data", records, fields)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "trace_id": "qid",
                "question": "prompt_text",
                "trace": "gen",
                "answer": ["final"],
                "correct": "ok",
                "logprob_trace_id": "qid",
                "logprob_token": "tok",
                "logprob_value": "lp",
                "logprob_position": "step",
            }
        )
    )
    got = read_released(root, "gsm8k", ReleasedMapping.load(mapping))
    assert [r.trace for r in got] == [r["trace"] for r in records]
    with pytest.raises(RBridgeError) as caught:
        read_released(root, "gsm8k")
    folder = root / "traces" / "gsm8k"
    assert str(caught.value) == (
        f"{folder / 'gpt4o_s1_new.json'}: the completions' keys are not recognised: "
        f"no trace_id (tried {list(ReleasedMapping.trace_id)}); "
        f"no question (tried {list(ReleasedMapping.question)}); "
        f"no trace (tried {list(ReleasedMapping.trace)}). The completions have the keys "
        "['final', 'gen', 'ok', 'prompt_text', 'qid']. See how each folder reads with `rbridge "
        f"traces import --format released --inspect {root}`, then name the fields in a mapping "
        "file (JSON or YAML, e.g. `trace: my_field`; dotted names reach nested fields) passed "
        "with --metadata released_mapping=FILE, or --mapping FILE for `rbridge traces import`"
    )


def test_released_folder_through_the_task(tmp_path, records, data_dir):
    root = write_released(tmp_path, records, FIELDS)
    task = task_manager(traces=root, data_dir=data_dir).load(["rbridge_gsm8k"])["tasks"][
        "rbridge_gsm8k"
    ]
    docs = list(task.eval_docs)
    assert [d["id"] for d in docs] == [r["id"] for r in records]
    assert docs[0]["trace"] == records[0]["trace"]


def test_layout_errors(tmp_path, records):
    with pytest.raises(RBridgeError, match=r"folder not found: .*traces/cqa"):
        read_released(tmp_path, "csqa")
    root = write_released(tmp_path, records, FIELDS)
    with pytest.raises(RBridgeError, match=r"unknown mapping key\(s\) \['trace_field'\]"):
        ReleasedMapping.load({"trace_field": "x"})
    part = next((root / "traces/gsm8k").glob("*part01*"))
    rows = [json.loads(line) for line in part.read_text().splitlines()]
    part.write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"] != records[0]["id"]))
    with pytest.raises(RBridgeError, match=r"id '0', field 'frontier_tokens': the token texts"):
        read_released(root, "gsm8k")


def test_the_495_math500_traces_join_and_the_run_counts_the_questions_without_one(
    tmp_path, data_dir, caplog
):
    """As released: 495 MATH-500 traces for the 500 questions, under the real file names."""
    questions = load_questions("math500", data_dir)
    without = {q.id for q in questions[::100]}
    kept = [q for q in questions if q.id not in without]
    replies = {
        q.id: json.dumps({"reasoning": f"Work through problem {n}.", "final_answer": q.gold})
        for n, q in enumerate(kept)
    }
    completions = [
        {"unique_id": q.id, "problem": q.question, "response": replies[q.id]} for q in kept
    ]
    rows = [
        {"unique_id": i, "token": reply[k : k + 5], "logprob": -0.25}
        for i, reply in replies.items()
        for k in range(0, len(reply), 5)
    ]
    write_config(tmp_path, "math500", completions, rows)
    settings = TaskSettings.from_metadata(
        {"benchmark": "math500", "traces": str(tmp_path), "data_dir": str(data_dir)}
    )
    with caplog.at_level(logging.WARNING, logger="rbridge_tasks.harness.documents"):
        docs, provenance = build_documents(settings)
    assert (len(questions), len(without), len(docs)) == (500, 5, 495)
    assert [d["id"] for d in docs] == [q.id for q in kept]
    assert [d["trace"] for d in docs] == [f"Work through problem {n}." for n in range(495)]
    assert provenance["pack_documents"] == 495 and provenance["benchmark_questions"] == 500
    assert provenance["questions_without_trace"] == 5
    assert caplog.messages == [
        f"math500: 5 of the 500 questions have no trace in {tmp_path.resolve()} (released "
        "traces); they are not scored"
    ]


REASONING = 'Add "2" and 2.\n🦆'


def raw_reply(reasoning=REASONING, **extra) -> str:
    return json.dumps({"reasoning": reasoning, "final_answer": "4", **extra})


def write(root, replies: dict[str, str], *, benchmark="gsm8k", drop=None, spell=None):
    """Replies with one row per character over the benchmark's real logprob files (`drop`: leave
    that part out); `spell`: the text the rows spell instead of the reply."""
    completions = [
        {"id": i, "question": "What is 2 + 2?", "response": r} for i, r in replies.items()
    ]
    rows = [
        {"id": i, "token": c, "logprob": -0.01 * (n % 7)}
        for i, r in replies.items()
        for n, c in enumerate(spell or r)
    ]
    return write_config(root, benchmark, completions, rows, drop_part=drop)


def test_json_replies_read_as_their_reasoning(tmp_path):
    write(tmp_path, {"7": raw_reply()})
    (record,) = read_released(tmp_path, "gsm8k")
    assert (record.id, record.trace, record.answer) == ("7", REASONING, None)
    assert record.meta["completion"] == raw_reply() and record.meta["final_answer"] == "4"
    # one row per raw character: '\n' (two raw characters) takes the mean of both rows
    reply = raw_reply()
    at = reply.index("\\n")
    newline = REASONING.index("\n")
    weights = [
        math.exp(lp)
        for t, lp in zip(record.token_texts, record.token_logprobs, strict=True)
        for _ in t
    ]
    both = [math.exp(-0.01 * (n % 7)) for n in (at, at + 1)]
    assert weights[newline] == pytest.approx(sum(both) / 2, rel=1e-12)


@pytest.mark.parametrize("benchmark", list(CONFIG_OF_BENCHMARK))
def test_every_config_reads_under_its_released_file_names(tmp_path, benchmark):
    """MATH-500's `gpt4o_s1_merged.json` takes `gpt4o_s1_logprobs_partNN_of_03_merged.jsonl`,
    MMLU-Pro's 31 parts, HumanEval's single file; each reads as the same replies in one file."""
    replies = {"3": raw_reply(), "9": raw_reply('Halve 8.\n\t"x"')}
    folder = write(tmp_path / "released", replies, benchmark=benchmark)
    traces_name, logprob_names = RELEASED_FILES[folder.name]
    assert sorted(p.name for p in folder.iterdir()) == sorted([traces_name, *logprob_names])
    records = read_released(tmp_path / "released", benchmark)
    assert [(r.id, r.trace) for r in records] == [("3", REASONING), ("9", 'Halve 8.\n\t"x"')]
    write(tmp_path / "whole", replies, benchmark="humaneval")
    whole = read_released(tmp_path / "whole", "humaneval")
    for got, expected in zip(records, whole, strict=True):
        assert (got.token_texts, got.token_logprobs) == (
            expected.token_texts,
            expected.token_logprobs,
        )
        assert got.meta == expected.meta


def test_a_lone_traces_file_takes_the_lone_logprob_set_whatever_its_name(tmp_path):
    folder = write(tmp_path, {"7": raw_reply()}, benchmark="humaneval")
    (folder / "gpt4o_s1.json").rename(folder / "completions.json")
    (record,) = read_released(tmp_path, "humaneval")
    assert record.trace == REASONING


def test_which_traces_file_the_logprob_files_belong_to(tmp_path):
    folder = write(tmp_path, {"7": raw_reply()})
    (folder / "summary.json").write_text("{}")  # a second .json: the name decides, not the count
    (record,) = read_released(tmp_path, "gsm8k")
    assert record.trace == REASONING
    (folder / "gpt4o_s1_new.json").rename(folder / "completions.json")
    listing = (
        "traces files there: ['completions.json', 'summary.json'], logprob files: "
        f"{RELEASED_FILES['gsm8k'][1]}"
    )
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value) == (
        f"released traces: expected one .json traces file with its logprob files in {folder} "
        f"({listing}); name one with the mapping key 'traces_file'"
    )
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k", ReleasedMapping(traces_file="completions.json"))
    assert str(caught.value) == (
        f"released traces: {folder}: no logprob files belong to completions.json ({listing}); "
        "a logprob file belongs to the traces file whose stem is its name without `.jsonl`, "
        "`_logprobs` and `_partNN_of_MM`, e.g. completions_logprobs_part01_of_03.jsonl"
    )


def test_a_part_missing_from_a_sequence(tmp_path, capsys):
    folder = write(tmp_path, {"7": raw_reply()}, drop=2)
    message = (
        f"released traces: {folder}: the logprob files of gpt4o_s1_new are an incomplete "
        "sequence: ['part02_of_03'] missing (found gpt4o_s1_new_logprobs_part01_of_03.jsonl, "
        "gpt4o_s1_new_logprobs_part03_of_03.jsonl)"
    )
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value) == message
    argv = ["traces", "import", "--format", "released", str(tmp_path), "--benchmark", "gsm8k"]
    assert rbridge_main([*argv, "--out", str(tmp_path / "x.jsonl")]) == 2
    assert capsys.readouterr().err == f"rbridge traces: error: {message}\n"


@pytest.mark.parametrize(
    ("reply", "field", "message"),
    [
        (json.dumps({"final_answer": "4"}), "response.reasoning", "missing; the reply has keys"),
        (raw_reply(reasoning=["a"]), "response.reasoning", "must be a string, got list"),
        ('{"reasoning": "a" "final_answer": "4"}', "response", "expected ',' or '}'"),
    ],
)
def test_replies_that_break_the_format(tmp_path, reply, field, message):
    folder = write(tmp_path, {"0": raw_reply(), "7": reply})
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value).startswith(
        f"{folder / 'gpt4o_s1_new.json'} [1], id '7', field '{field}': {message}"
    )


def test_a_stream_that_does_not_spell_the_reply(tmp_path):
    reply = raw_reply()
    folder = write(tmp_path, {"7": reply}, benchmark="humaneval", spell=reply.replace("2", "3"))
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "humaneval")
    at = reply.index("2")
    assert str(caught.value) == (
        f"{folder / 'gpt4o_s1.json'} [0], id '7', field 'response': the logprob stream does not "
        f"spell the reply: its tokens give {len(reply)} characters, the reply has {len(reply)}, "
        f"first difference at character {at} (reply {reply[at : at + 20]!r}, tokens "
        f"{reply.replace('2', '3')[at : at + 20]!r}) (rows in ['gpt4o_s1_logprobs.jsonl'])"
    )


def test_rows_of_lists_and_bytes(tmp_path):
    """One row per completion holding parallel lists, `bytes` splitting the emoji over two
    tokens."""
    replies = [raw_reply(), json.dumps({"reasoning": "é🦆", "final_answer": 1}, ensure_ascii=False)]
    entries = [{"id": i, "question": "q", "response": r} for i, r in enumerate(replies)]
    raw = replies[1].encode("utf-8")
    duck = raw.index("🦆".encode())
    chunks = [raw[: duck + 2], raw[duck + 2 :]]
    rows = [
        {"id": 0, "tokens": [replies[0]], "logprobs": [-0.5]},
        {
            "id": 1,
            "tokens": [c.decode("utf-8", "replace") for c in chunks],
            "logprobs": [math.log(0.5), math.log(0.25)],
            "bytes": [list(c) for c in chunks],
        },
    ]
    write_config(tmp_path, "humaneval", entries, rows)
    first, second = read_released(tmp_path, "humaneval")
    assert (first.id, first.trace, set(first.token_logprobs)) == ("0", REASONING, {-0.5})
    assert (second.id, second.trace) == ("1", "é🦆")
    # 'é' lies in the first token; '🦆' is completed by the second, so all of it is the second's
    assert second.token_texts == ("é", "🦆")
    assert [math.exp(lp) for lp in second.token_logprobs] == pytest.approx([0.5, 0.25], rel=1e-12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trace: [unclosed\n", r"mapping.yaml, line 2: not valid YAML or JSON \("),
        ("- trace\n", r"mapping.yaml: expected mapping keys with field names, got a list"),
        (
            "trace: 5\n",
            r"mapping.yaml: key 'trace': expected a field name or a list of field names",
        ),
        ("trace: [a, 3]\n", r"mapping.yaml: key 'trace': expected a field name or a list"),
        ("strip_answer: maybe\n", r"mapping.yaml: key 'strip_answer': expected true or false"),
        ("completion_format: xml\n", r"key 'completion_format': expected one of \['auto', 'json'"),
        (
            "frontier_model: 4\n",
            r"mapping.yaml: key 'frontier_model': expected a model name, got 4",
        ),
        ("trace_feild: x\n", r"unknown mapping key\(s\) \['trace_feild'\] \(did you mean 'trace_"),
        ("logprob_tokn: x\n", r"\['logprob_tokn'\] \(did you mean 'logprob_token'\?\); valid keys"),
    ],
)
def test_mapping_file_errors(tmp_path, text, message):
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    with pytest.raises(RBridgeError, match=message):
        ReleasedMapping.load(path)


def test_mapping_file_values(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"trace": "gen", "answer": ["a", "b"], "strip_answer": False}))
    mapping = ReleasedMapping.load(path)
    assert (mapping.trace, mapping.answer, mapping.strip_answer) == (("gen",), ("a", "b"), False)
    (tmp_path / "empty.yaml").write_text("")
    assert ReleasedMapping.load(tmp_path / "empty.yaml") == ReleasedMapping()


def test_inspect_names_what_it_cannot_read(tmp_path):
    write(tmp_path, {"7": raw_reply()}, drop=1)
    printed = inspect_released(tmp_path)
    assert (
        "the logprob files of gpt4o_s1_new are an incomplete sequence: ['part01_of_03'] missing"
        in printed
    )
    with pytest.raises(RBridgeError, match=r"no traces/<config>/ folders"):
        inspect_released(tmp_path / "traces" / "gsm8k")


@pytest.mark.parametrize("where", ["missing", "file"])
def test_inspect_a_folder_that_is_not_there(tmp_path, capsys, where):
    path = tmp_path / "rBridge"
    what = "no such folder"
    if where == "file":
        path.write_text("")
        what = "a file, not a folder"
    argv = ["traces", "import", "--format", "released", "--inspect", str(path)]
    assert rbridge_main(argv) == 2
    assert capsys.readouterr().err == (
        f"rbridge traces: error: {path}: {what}; pass the folder that holds traces/ (a local "
        "copy of the trillionlabs/rBridge dataset)\n"
    )


def test_a_completion_stored_as_its_decoded_reasoning(tmp_path):
    """The traces file may hold `reasoning` decoded while the rows spell the whole reply."""
    replies = {"7": REASONING, "8": "Add 2 and 3."}
    folder = write(tmp_path, replies, benchmark="humaneval", spell=raw_reply())
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "humaneval")
    assert str(caught.value).startswith(
        f"{folder / 'gpt4o_s1.json'} [1], id '8', field 'response': is neither the JSON reply "
        "its logprob stream spells nor that reply's reasoning"
    )
    entries = json.loads((folder / "gpt4o_s1.json").read_text())
    (folder / "gpt4o_s1.json").write_text(json.dumps(entries[:1]))
    rows = [json.loads(line) for line in (folder / "gpt4o_s1_logprobs.jsonl").open()]
    (folder / "gpt4o_s1_logprobs.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows if r["id"] == "7")
    )
    (record,) = read_released(tmp_path, "humaneval")
    assert record.trace == REASONING and record.meta["completion"] == raw_reply()


QUESTION = "Janet has 2 ducks and buys 2 more. How many ducks?"


REASONINGS = {"3": 'Add "2" and 2:\n\t2 + 2 = 4 🦆', "9": "Halve 8, then double it."}


def reply(trace_id: str) -> str:
    return json.dumps({"reasoning": REASONINGS[trace_id], "final_answer": "4"}, ensure_ascii=False)


def stream(trace_id: str) -> list[dict]:
    """The reply in tokens of three characters, each with its own logprob."""
    text = reply(trace_id)
    return [
        {"text": text[k : k + 3], "logprob": -0.05 * (k % 5 + 1)} for k in range(0, len(text), 3)
    ]


def plain_shape():
    completions = [
        {"id": i, "question": QUESTION, "response": reply(i), "final_answer": "4"}
        for i in REASONINGS
    ]
    rows = [{"id": i, **t} for i in REASONINGS for t in token_objects(stream(i))]
    return completions, rows, None


def decoded_reply_fields():
    """The completions hold the reply's decoded `reasoning` and `final_answer`, no raw reply."""
    completions = [
        {"id": i, "question": QUESTION, "reasoning": REASONINGS[i], "final_answer": "4"}
        for i in REASONINGS
    ]
    return completions, plain_shape()[1], None


def openai_batch():
    """Batch API output: requests named by `custom_id`, the reply and its token objects under
    `response.body.choices[0]`; the rows' own `id` (batch_req_...) matches nothing."""

    def body(i: str, logprobs: bool) -> dict:
        choice: dict = {"index": 0, "message": {"role": "assistant", "content": reply(i)}}
        if logprobs:
            choice["logprobs"] = {"content": token_objects(stream(i))}
        return {"status_code": 200, "body": {"id": f"chatcmpl-{i}", "choices": [choice]}}

    completions = [
        {
            "custom_id": f"request-{n}",
            "idx": int(i),
            "question": QUESTION,
            "response": body(i, False),
        }
        for n, i in enumerate(REASONINGS)
    ]
    rows = [
        {"id": f"batch_req_{n}", "custom_id": f"request-{n}", "response": body(i, True)}
        for n, i in enumerate(REASONINGS)
    ]
    return completions, rows, None


def sample_idx():
    """Rows name their completion by its position in the traces file (`sample_idx`)."""
    order = list(reversed(REASONINGS))
    completions = [{"unique_id": i, "problem": QUESTION, "completion": reply(i)} for i in order]
    rows = [{"sample_idx": n, **t} for n, i in enumerate(order) for t in token_objects(stream(i))]
    return completions, rows, None


def rows_keyed_by_id():
    rows = [{i: token_objects(stream(i))} for i in REASONINGS]
    return plain_shape()[0], rows, None


def token_object_lists():
    rows = [{"id": i, "logprobs": token_objects(stream(i))} for i in REASONINGS]
    return plain_shape()[0], rows, None


def traces_keyed_by_id():
    completions = {i: {"question": QUESTION, "response": reply(i)} for i in REASONINGS}
    return completions, plain_shape()[1], None


def dotted_mapping():
    completions = [
        {"meta": {"qid": i}, "q": {"text": QUESTION}, "out": [{"text": reply(i)}]}
        for i in REASONINGS
    ]
    rows = [
        {"ref": {"qid": i}, "tok": {"t": t["text"], "lp": t["logprob"]}}
        for i in REASONINGS
        for t in stream(i)
    ]
    mapping = {
        "trace_id": "meta.qid",
        "question": "q.text",
        "trace": "out.0.text",
        "logprob_trace_id": "ref.qid",
        "logprob_token": "tok.t",
        "logprob_value": "tok.lp",
    }
    return completions, rows, mapping


SHAPES = [
    decoded_reply_fields,
    openai_batch,
    sample_idx,
    rows_keyed_by_id,
    token_object_lists,
    traces_keyed_by_id,
    dotted_mapping,
]


def essence(record):
    return dataclasses.replace(record, answer=None)


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    write_config(root, "gsm8k", *plain_shape()[:2])
    records = {r.id: r for r in read_released(root, "gsm8k")}
    assert [records[i].trace for i in REASONINGS] == list(REASONINGS.values())
    # the plain shape itself, checked independently: the reply's stream, the reasoning's span
    for i, record in records.items():
        assert record.meta["reply_tokens"] == stream(i) and record.answer == "4"
        start, end = record.meta["reasoning_span"]
        assert json.loads(f'"{reply(i)[start:end]}"') == REASONINGS[i]
    return records


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_each_key_set_reads_as_the_plain_shape(tmp_path, expected, shape):
    completions, rows, mapping = shape()
    write_config(tmp_path, "gsm8k", completions, rows)
    got = read_released(tmp_path, "gsm8k", ReleasedMapping.load(mapping))
    assert sorted(r.id for r in got) == sorted(REASONINGS)
    for record in got:
        assert essence(record) == essence(expected[record.id])
    if shape is decoded_reply_fields:  # `final_answer` is the record's answer
        assert {r.answer for r in got} == {"4"}


def test_keys_that_match_nothing_fail_once_with_the_ways_out(tmp_path, capsys):
    completions = [{"uid": i, "q": QUESTION, "gen": reply(i)} for i in REASONINGS]
    folder = write_config(tmp_path, "gsm8k", completions, plain_shape()[1])
    argv = ["traces", "import", "--format", "released", str(tmp_path), "--benchmark", "gsm8k"]
    assert rbridge_main([*argv, "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "out.jsonl").exists()
    assert err.startswith(
        f"rbridge traces: error: {folder / 'gpt4o_s1_new.json'}: the completions' keys are not "
        "recognised: no trace_id (tried ['unique_id', "
    )
    assert "The completions have the keys ['gen', 'q', 'uid']." in err
    assert f"--inspect {tmp_path}`" in err and "--metadata released_mapping=FILE" in err
    assert "--mapping FILE for `rbridge traces import`" in err

    rows = [
        {"uid": i, "piece": t["text"], "lp": t["logprob"]} for i in REASONINGS for t in stream(i)
    ]
    write_config(tmp_path, "gsm8k", plain_shape()[0], rows)
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    message = str(caught.value)
    first_part = folder / RELEASED_FILES["gsm8k"][1][0]
    assert message.startswith(
        f"{first_part}: the logprob rows' keys are not recognised: no logprob_trace_id (tried "
    )
    assert "no logprob_token (tried ['token', 'text', 'tokens'])" in message
    assert "The logprob rows have the keys ['lp', 'piece', 'uid']." in message


def test_a_field_some_completions_lack(tmp_path):
    completions, rows, _ = plain_shape()
    completions[1]["output"] = completions[1].pop("response")
    folder = write_config(tmp_path, "gsm8k", completions, rows)
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value) == (
        f"{folder / 'gpt4o_s1_new.json'} [1], field 'response': missing; expected the completion "
        "text (mapping key 'trace'; the other completions have it)"
    )
    rows[5]["logprob"] = None
    completions[1]["response"] = completions[1].pop("output")
    write_config(tmp_path, "gsm8k", completions, rows)
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value) == (
        f"{folder / RELEASED_FILES['gsm8k'][1][0]}, line 6, field 'logprob': is null; expected "
        "a number (or a list of them) (mapping key 'logprob_value'; the other rows have it)"
    )


def test_repeated_ids(tmp_path):
    completions, rows, _ = plain_shape()
    completions[1]["id"] = "3"
    folder = write_config(tmp_path, "gsm8k", completions, rows)
    traces = folder / "gpt4o_s1_new.json"
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value) == (
        f"{traces} [1], field 'id': repeats the id '3' of {traces} [0]; ids must be unique "
        "(mapping key 'trace_id')"
    )


def test_rows_whose_ids_match_no_completion(tmp_path):
    completions, rows, _ = plain_shape()
    for row in rows:
        row["id"] = "q" + row["id"]
    folder = write_config(tmp_path, "gsm8k", completions, rows)
    with pytest.raises(RBridgeError) as caught:
        read_released(tmp_path, "gsm8k")
    assert str(caught.value).startswith(
        f"{folder / RELEASED_FILES['gsm8k'][1][0]}: no id of its rows matches a completion of "
        "gpt4o_s1_new.json (rows: id ['q3']; completions: id ['3', '9']; (position) ['0', '1'])."
    )


def test_token_logprobs_without_a_completion_are_left_out_with_a_warning(
    tmp_path, expected, caplog
):
    completions, rows, _ = plain_shape()
    write_config(tmp_path, "gsm8k", completions[:1], rows)
    with caplog.at_level(logging.WARNING, logger="rbridge_tasks.records.released"):
        (record,) = read_released(tmp_path, "gsm8k")
    assert record == expected["3"]
    assert caplog.messages == [
        f"released traces: 1 id(s) in {RELEASED_FILES['gsm8k'][1]} have token logprobs but no "
        "completion in gpt4o_s1_new.json, e.g. ['9']; they are left out"
    ]


def test_inspect_shows_the_resolved_fields_and_the_join(tmp_path, capsys):
    write_config(tmp_path, "gsm8k", *openai_batch()[:2])
    argv = ["traces", "import", "--format", "released", "--inspect", str(tmp_path)]
    assert rbridge_main(argv) == 0
    printed = capsys.readouterr().out
    folder = config_folder(tmp_path, "gsm8k")
    for line in (
        f"{folder}:",
        "  traces file: gpt4o_s1_new.json, 2 completion(s) (a JSON array); fields: custom_id "
        "(str), idx (int), question (str), response (dict)",
        "    trace_id: 'idx'",
        "    trace: 'response.body.choices.0.message.content'",
        "  rows: one row per completion, its token objects under "
        "'response.body.choices.0.logprobs.content'; row fields used:",
        "    logprob_trace_id: 'custom_id', 'id'",
        "  join: rows' 'custom_id' = completions' 'custom_id'",
        "  reads as gsm8k: 2 record(s) (JSON replies); first: 'Add \"2\" and 2:\\n\\t2 + 2 = 4 🦆'",
    ):
        assert line in printed.splitlines(), line
