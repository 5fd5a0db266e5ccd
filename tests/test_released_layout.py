"""The released layout's bad inputs, each one clear error naming the file, record and field;
the mapping file's checks; the shapes of rows and completions the reader also accepts."""

from __future__ import annotations

import json
import math

import pytest
from released_layout_fixture import RELEASED_FILES, write_config

from rbridge_tasks.cli import main as rbridge_main
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.records.released import (
    CONFIG_OF_BENCHMARK,
    ReleasedMapping,
    inspect_released,
    read_released,
)

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
