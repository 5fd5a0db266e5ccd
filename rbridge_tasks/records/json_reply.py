"""The paper's JSON reply: find `reasoning`, decode it, and carry the stream's confidences over.

The frontier answered `{"reasoning": ..., "final_answer": ...}` (method.md, "The paper's frontier
prompt"), so its token stream spells the JSON text, escapes included, while the scored trace `R`
is the decoded `reasoning` value. Each decoded character takes the mean probability of the raw
characters of its escaped form (`\\n`: two raw characters; `\\ud83e\\udd86`: twelve, one code
point), each raw character that of the stream token holding it (`token_text.py`'s rule).

The result is expressed as pseudo-tokens whose texts spell `R`, so that the rest of the pipeline
(a character weighs `exp(logprob)` of its token) gives each character exactly that mean:
consecutive characters whose raw characters all come from one stream token form one pseudo-token
with that token's own logprob; a character whose escape spans several tokens is a pseudo-token of
its own with `log(mean p)`.

Accepted around the object: whitespace and one Markdown code fence (```json ... ```), which chat
models add despite the instruction. Inside strings, literal control characters are read as
themselves (`json` with strict=False), as a model may write a raw newline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from json.decoder import WHITESPACE, scanstring
from typing import Any

from rbridge_tasks.core.errors import RBridgeError

REASONING, FINAL_ANSWER = "reasoning", "final_answer"
_OPENING = re.compile(r"\s*(?:```[A-Za-z]*[ \t]*\n)?\s*")
_CLOSING = re.compile(r"\s*(?:```\s*)?")
_DECODER = json.JSONDecoder(strict=False)


class ReplyFormatError(RBridgeError):
    """The reply breaks the paper's format (the generator retries; readers report it)."""

    def __init__(self, detail: str, field: str | None = None):
        super().__init__(detail if field is None else f"field {field!r}: {detail}")
        self.detail, self.field = detail, field


class StreamMismatchError(RBridgeError):
    """The token stream does not spell the reply it is said to belong to."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class JsonReply:
    """The decoded reply; `reasoning_span` is the raw span of the value, quotes excluded."""

    reasoning: str
    final_answer: str
    reasoning_span: tuple[int, int]


@dataclass(frozen=True)
class MappedReasoning:
    """The reply and the frontier tokens of its decoded `reasoning` only: texts that concatenate
    to it exactly, each with the logprob of the stream token that produced it (the log of the
    mean probability where one character's escape spans several tokens)."""

    reply: JsonReply
    token_texts: tuple[str, ...]
    token_logprobs: tuple[float, ...]


def looks_like_reply(text: str) -> bool:
    """Whether a completion is a JSON reply (an object, maybe in a code fence) or plain text."""
    return text.startswith("{", _OPENING.match(text).end())


def parse_reply(text: str) -> JsonReply:
    """The reply's `reasoning` and `final_answer`, and where `reasoning` lies in the raw text."""
    start = _OPENING.match(text).end()
    if not looks_like_reply(text):
        raise ReplyFormatError(f"the reply does not start with a JSON object: {text[:40]!r}")
    members, end = _members(text, start)
    rest = _CLOSING.match(text, end).end()
    if rest != len(text):
        raise ReplyFormatError(f"text after the JSON object: {text[end : end + 40]!r}")
    if REASONING not in members:
        raise ReplyFormatError(f"missing; the reply has keys {sorted(members)}", REASONING)
    reasoning, value_start, value_end = members[REASONING]
    if not isinstance(reasoning, str):
        raise ReplyFormatError(
            f"must be a string, got {type(reasoning).__name__} {text[value_start:value_end][:40]}",
            REASONING,
        )
    try:
        reasoning.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ReplyFormatError(
            f"holds a lone surrogate at character {exc.start} (an escape like \\ud83e without "
            "its pair is not a character)",
            REASONING,
        ) from None
    if FINAL_ANSWER not in members:
        raise ReplyFormatError(f"missing; the reply has keys {sorted(members)}", FINAL_ANSWER)
    answer = members[FINAL_ANSWER][0]
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise ReplyFormatError(
            f"must be a string or a number, got {type(answer).__name__}", FINAL_ANSWER
        )
    return JsonReply(reasoning, str(answer), (value_start + 1, value_end - 1))


def map_reasoning(
    text: str, token_texts: Sequence[str], token_logprobs: Sequence[float]
) -> MappedReasoning:
    """Parse the reply its tokens spell and give each character of `reasoning` its confidence.

    Raises
    ------
    StreamMismatchError
        The token texts do not concatenate to `text` (names the first differing character).
    ReplyFormatError
        `text` is not the paper's reply format.
    """
    joined = "".join(token_texts)
    if joined != text:
        at = next(
            (i for i, (a, b) in enumerate(zip(joined, text, strict=False)) if a != b),
            min(len(joined), len(text)),
        )
        raise StreamMismatchError(
            f"the logprob stream does not spell the reply: its tokens give "
            f"{len(joined)} characters, the reply has {len(text)}, first difference at "
            f"character {at} (reply {text[at : at + 20]!r}, tokens {joined[at : at + 20]!r})"
        )
    reply = parse_reply(text)
    start, end = reply.reasoning_span
    owner = _token_of_each_character(token_texts, end)
    texts: list[str] = []
    logprobs: list[float] = []
    previous: int | None = None  # the stream token of the last pseudo-token, when it has one
    for char, (a, b) in zip(reply.reasoning, _escaped_forms(text, start, end), strict=True):
        sources = owner[a:b]
        if all(s == sources[0] for s in sources):
            if sources[0] == previous:
                texts[-1] += char
                continue
            previous = sources[0]
            texts.append(char)
            logprobs.append(token_logprobs[previous])
        else:
            previous = None
            texts.append(char)
            logprobs.append(_log_mean_exp([token_logprobs[s] for s in sources]))
    return MappedReasoning(reply, tuple(texts), tuple(logprobs))


def reply_meta(
    text: str, token_texts: Sequence[str], token_logprobs: Sequence[float], mapped: MappedReasoning
) -> dict[str, Any]:
    """The raw reply and its stream, for audit (and to write the released layout back)."""
    return {
        "completion": text,
        "reply_tokens": [
            {"text": t, "logprob": lp} for t, lp in zip(token_texts, token_logprobs, strict=True)
        ],
        "reasoning_span": list(mapped.reply.reasoning_span),
        "final_answer": mapped.reply.final_answer,
    }


def _members(text: str, start: int) -> tuple[dict[str, tuple[Any, int, int]], int]:
    """Top-level keys -> (value, raw start, raw end), and the end of the object."""
    members: dict[str, tuple[Any, int, int]] = {}
    pos = WHITESPACE.match(text, start + 1).end()
    if text.startswith("}", pos):
        return members, pos + 1
    try:
        while True:
            if not text.startswith('"', pos):
                raise ReplyFormatError(f"expected a key at character {pos}: {text[pos:][:20]!r}")
            key, pos = scanstring(text, pos + 1, False)
            pos = WHITESPACE.match(text, pos).end()
            if not text.startswith(":", pos):
                raise ReplyFormatError(f"expected ':' after key {key!r} at character {pos}")
            value_start = WHITESPACE.match(text, pos + 1).end()
            value, pos = _DECODER.raw_decode(text, value_start)
            if key in members:
                raise ReplyFormatError(f"key {key!r} appears twice", key)
            members[key] = (value, value_start, pos)
            pos = WHITESPACE.match(text, pos).end()
            if text.startswith("}", pos):
                return members, pos + 1
            if not text.startswith(",", pos):
                raise ReplyFormatError(f"expected ',' or '}}' at character {pos}")
            pos = WHITESPACE.match(text, pos + 1).end()
    except json.JSONDecodeError as exc:
        raise ReplyFormatError(f"invalid JSON: {exc.msg} at character {exc.pos}") from exc


def _escaped_forms(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The raw span of each decoded character of the (already validated) string text[start:end]:
    one character, a two-character escape, `\\uXXXX`, or a surrogate pair `\\uD8xx\\uDCxx`,
    which json decodes to one code point."""
    spans = []
    i = start
    while i < end:
        if text[i] != "\\":
            width = 1
        elif text[i + 1] != "u":
            width = 2
        else:
            width = 6
            if (
                0xD800 <= int(text[i + 2 : i + 6], 16) <= 0xDBFF
                and text.startswith("\\u", i + 6)
                and 0xDC00 <= int(text[i + 8 : i + 12], 16) <= 0xDFFF
            ):
                width = 12
        spans.append((i, i + width))
        i += width
    return spans


def _token_of_each_character(token_texts: Sequence[str], end: int) -> list[int]:
    owner: list[int] = []
    for index, piece in enumerate(token_texts):
        if len(owner) >= end:
            break
        owner.extend([index] * len(piece))
    return owner


def _log_mean_exp(logprobs: Sequence[float]) -> float:
    top = max(logprobs)
    return top + math.log(math.fsum(math.exp(lp - top) for lp in logprobs) / len(logprobs))
