"""The JSON-escape confidence mapping, against a reference written from the rule itself:
a decoded character's confidence is the mean, over the raw characters of its escaped form, of
the probability of the stream token holding each raw character."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbridge_tasks.records.json_reply import (
    ReplyFormatError,
    StreamMismatchError,
    map_reasoning,
    parse_reply,
)

SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
SHORT |= {"\r": "\\r", "\t": "\\t"}
TOLERANCE = 1e-12  # relative: exp(log(mean p)) against mean p


def u_escape(char: str, upper: bool) -> str:
    code = ord(char)
    units = (
        [code]
        if code < 0x10000
        else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    )
    return "".join(f"\\u{u:04X}" if upper else f"\\u{u:04x}" for u in units)


def escaped_forms(char: str) -> list[str]:
    """Every way a JSON writer may spell `char` inside a string (json.dumps' two among them)."""
    forms = {
        json.dumps(char, ensure_ascii=True)[1:-1],
        json.dumps(char, ensure_ascii=False)[1:-1],
        u_escape(char, upper=False),
        u_escape(char, upper=True),
    }
    if char in SHORT:
        forms.add(SHORT[char])
    if char not in '"\\' and (ord(char) >= 0x20 or char in "\n\t"):
        forms.add(char)  # literal (a raw newline or tab is accepted, strict=False)
    return sorted(forms)


reasoning_chars = st.characters(codec="utf-8") | st.sampled_from('"\\/\b\f\n\r\t\x00\x1f🦆😀é')


@st.composite
def replies(draw):
    reasoning = draw(st.text(reasoning_chars, max_size=40))
    forms = [draw(st.sampled_from(escaped_forms(c))) for c in reasoning]
    answer = draw(st.text(reasoning_chars, max_size=8) | st.just('x", "reasoning": "decoy'))
    ascii_answer = draw(st.booleans())
    value = '"' + "".join(forms) + '"'
    other = json.dumps(answer, ensure_ascii=ascii_answer)
    space = draw(st.sampled_from(["", " ", "\n  "]))
    if draw(st.booleans()):
        body = f'{{{space}"reasoning":{space}{value},{space}"final_answer": {other}{space}}}'
        start = len(f'{{{space}"reasoning":{space}') + 1
    else:
        body = f'{{"final_answer":{space}{other}, "reasoning": {value}{space}}}'
        start = len(f'{{"final_answer":{space}{other}, "reasoning": ') + 1
    fence = draw(st.sampled_from([("", ""), ("```json\n", "\n```"), ("\n", "\n")]))
    text = fence[0] + body + fence[1]
    start += len(fence[0])
    # the reference: raw span of each decoded character
    spans, position = [], start
    for form in forms:
        spans.append((position, position + len(form)))
        position += len(form)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(text) - 1, 1)), max_size=60))))
    bounds = [0, *[c for c in cuts if 0 < c < len(text)], len(text)]
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    # empty-text tokens (partial UTF-8 characters) own no characters
    for where in draw(st.lists(st.integers(0, len(pieces)), max_size=3)):
        pieces.insert(where, "")
    logprobs = draw(
        st.lists(st.floats(-30.0, 0.0, allow_nan=False), min_size=len(pieces), max_size=len(pieces))
    )
    return reasoning, answer, text, spans, pieces, logprobs


def reference_confidences(spans, pieces, logprobs) -> list[float]:
    holder = []
    for index, piece in enumerate(pieces):
        holder += [math.exp(logprobs[index])] * len(piece)
    return [sum(holder[a:b]) / (b - a) for a, b in spans]


@settings(max_examples=400, deadline=None)
@given(replies())
def test_every_decoded_character_gets_the_mean_confidence_of_its_escape(case):
    reasoning, answer, text, spans, pieces, logprobs = case
    assert json.loads(text.strip().removeprefix("```json").removesuffix("```"), strict=False)[
        "reasoning"
    ] == (reasoning)
    mapped = map_reasoning(text, pieces, logprobs)
    assert mapped.reply.reasoning == reasoning and mapped.reply.final_answer == answer
    assert "".join(mapped.token_texts) == reasoning
    start, end = mapped.reply.reasoning_span
    assert (start, end) == ((spans[0][0], spans[-1][1]) if spans else (start, start))
    got = [
        math.exp(lp)
        for piece, lp in zip(mapped.token_texts, mapped.token_logprobs, strict=True)
        for _ in piece
    ]
    expected = reference_confidences(spans, pieces, logprobs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, rel=TOLERANCE, abs=0.0)
    assert all(lp <= 0.0 for lp in mapped.token_logprobs)


def test_hand_written_reply_with_every_escape_split_across_tokens():
    # R = 'a\n"\\/\b\f\r\té🦆' ; the 🦆 pair is 12 raw characters split over three tokens
    pieces = ['{"reasoning": "a\\', 'n\\"\\\\\\/\\b\\f\\r\\t\\u00', "e9\\ud83e\\u", 'dd86", ']
    pieces += ['"final_answer": 7}']
    logprobs = [math.log(0.5), math.log(0.25), math.log(0.125), math.log(1.0), -1.0]
    mapped = map_reasoning("".join(pieces), pieces, logprobs)
    assert mapped.reply.reasoning == 'a\n"\\/\b\f\r\té🦆'
    assert mapped.reply.final_answer == "7"
    assert mapped.token_texts == ("a", "\n", '"\\/\b\f\r\t', "é", "🦆")
    probabilities = [math.exp(lp) for lp in mapped.token_logprobs]
    # 'a': token 0; '\n': one raw character in token 0, one in token 1; the short escapes:
    # token 1; '\u00e9': 4 raw characters in token 1, 2 in token 2; the pair: 8 in token 2
    # ('\ud83e\u'), 4 in token 3 ('dd86')
    expected = [0.5, (0.5 + 0.25) / 2, 0.25, (4 * 0.25 + 2 * 0.125) / 6, (8 * 0.125 + 4 * 1.0) / 12]
    assert probabilities == pytest.approx(expected, rel=TOLERANCE)
    # characters wholly inside one token keep that token's logprob exactly
    assert mapped.token_logprobs[0] == logprobs[0] and mapped.token_logprobs[2] == logprobs[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"final_answer": "3"}', r"field 'reasoning': missing; the reply has keys \['final_"),
        ('{"reasoning": ["a"], "final_answer": "3"}', r"field 'reasoning': must be a string, got "),
        ('{"reasoning": "a"}', r"field 'final_answer': missing"),
        ('{"reasoning": "a", "final_answer": "3"', r"expected ',' or '}' at character 38"),
        ('{"reasoning": "a\\x", "final_answer": "3"}', r"invalid JSON: Invalid \\escape"),
        ("The answer is 3.", r"does not start with a JSON object"),
        ('{"reasoning": "a", "final_answer": "3"} done', r"text after the JSON object: ' done'"),
        ('{"reasoning": "a", "reasoning": "b", "final_answer": 1}', r"'reasoning' appears twice"),
        (
            '{"reasoning": "a\\ud83e b", "final_answer": 1}',
            r"'reasoning': holds a lone surrogate at",
        ),
    ],
)
def test_replies_that_break_the_format(text, message):
    with pytest.raises(ReplyFormatError, match=message):
        parse_reply(text)


def test_a_stream_that_does_not_spell_the_reply():
    text = '{"reasoning": "ab", "final_answer": "1"}'
    with pytest.raises(StreamMismatchError, match=r"first difference at character 16"):
        map_reasoning(text, ['{"reasoning": "a', 'c", "final_answer": "1"}'], [-0.1, -0.2])
