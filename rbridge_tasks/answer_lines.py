"""Strip the final-answer line and its boilerplate from a trace before it is scored.

The paper scores the reasoning, not the answer announcement ("The answer is 18",
"Final Answer: ...", "I hope it is correct."); the question is context only.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rbridge_tasks.records import TraceRecord

_ANSWER_LINE = re.compile(
    r"""^\s*(?:[#*>]+\s*)?(?:\*\*)?\s*(?:
        final\s+answer\b
        | (?:so|thus|therefore|hence)?,?\s*the\s+(?:final\s+|correct\s+|best\s+)?answer\s+is\b
        | answer\s*:
        | \#\#\#\#
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_BOILERPLATE_LINE = re.compile(r"^\s*I hope it is correct\.?\s*$", re.IGNORECASE)


def split_final_answer(text: str) -> tuple[str, str]:
    """Return (reasoning, stripped tail); the tail is empty when no answer line closes the text."""
    lines = text.splitlines(keepends=True)
    end = len(lines)
    while end and (not lines[end - 1].strip() or _BOILERPLATE_LINE.match(lines[end - 1])):
        end -= 1
    if not end or not _ANSWER_LINE.match(lines[end - 1]):
        return text, ""
    cut = len("".join(lines[: end - 1]).rstrip())
    if cut == 0:  # the answer line is all there is: nothing would be left to score
        return text, ""
    return text[:cut], text[cut:]


def strip_final_answer(record: TraceRecord) -> TraceRecord:
    """The record with its answer line removed and its frontier tokens cut at the same character.

    A frontier token that straddles the cut keeps its logprob for the part that remains.
    """
    kept, tail = split_final_answer(record.trace)
    if not tail:
        return record
    texts: list[str] = []
    logprobs: list[float] = []
    used = 0
    for text, lp in zip(record.token_texts, record.token_logprobs, strict=True):
        if used >= len(kept):
            break
        piece = text[: len(kept) - used]
        if piece:
            texts.append(piece)
            logprobs.append(lp)
        used += len(piece)
    meta = {**record.meta, "stripped_answer_text": tail}
    return replace(
        record, trace=kept, token_texts=tuple(texts), token_logprobs=tuple(logprobs), meta=meta
    )
