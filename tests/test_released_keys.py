"""The key sets the released files may have (their keys are not documented publicly): each
plausible shape reads as exactly the records of the plain shape (an `id`, a raw reply in
`response`, one row per token); keys that match nothing fail once, with the ways out."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from released_layout_fixture import RELEASED_FILES, config_folder, token_objects, write_config

from rbridge_tasks.cli import main as rbridge_main
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.records.released import ReleasedMapping, read_released

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
