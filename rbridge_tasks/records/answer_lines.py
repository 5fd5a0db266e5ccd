"""What of a frontier completion is scored: the reasoning, without the final answer.

method.md strips the answer announcement and its boilerplate ("The answer is 18",
"Final Answer: ...", "I hope it is correct.") before scoring; the question is context only.
Two rules find where the answer starts:

- a closing line that starts with an answer phrase ("The answer is 18.", "Final Answer: ...",
  "#### 18", few-shot "A: 18", zero_shot_cot's "Therefore, the answer (arabic numerals) is 18"
  and "Therefore, among A through E, the answer is (E)"), with boilerplate lines after it;
- real traces also close in ways that rule does not see: the answer in a closing sentence that
  does not start the line ("... principle.  The answer is (C)." in Gemini's MMLU-Pro outputs;
  "Thus, Joey is winning by \\(\\boxed{5}\\) points." in GPT-4o-mini's), or a bare boxed answer
  on its own line or display block with the unfinished sentence that leads into it ("Thus, the
  final answer is:\\n\\n\\[\\n\\boxed{11}\\n\\]"). That rule only looks at the last line with
  content and cuts at the start of its closing sentence.

Answer lines that follow one another at the end all go, as does leading and trailing whitespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.records.token_text import tokens_in_span

# "the answer is", also as zero_shot_cot's triggers write it: "the answer (arabic numerals) is"
_THE_ANSWER_IS = r"the\s+(?:final\s+|correct\s+|best\s+)?answer\s+(?:\([^()\n]*\)\s+)?is\b"
_ANSWER_LINE = re.compile(
    rf"""^\s*(?:[#*>]+\s*)?(?:\*\*)?\s*(?:
        final\s+answer\b
        | (?:(?:so|thus|therefore|hence),?\s*(?:among\s+\w+\s+through\s+\w+,?\s*)?)?
          {_THE_ANSWER_IS}
        | answer\s*:
        | a\s*:\s*(?:\(?[A-J]\)?|\$?-?[\d,]*\.?\d+)\s*\.?\s*$   # few-shot "A: 18", "A: (C)"
        | \#\#\#\#
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_MARKER = re.compile(
    rf"\\(?:boxed|fbox)\s*\{{|\b{_THE_ANSWER_IS}|\banswer\s*:",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?]\s+")
_DELIMITER_LINE = re.compile(r"^\s*(?:\\\[|\\\]|\$\$|\\\(|\\\))\s*$")
_BOILERPLATE_LINE = re.compile(r"^\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MATH_DELIMITERS = re.compile(r"\\[()\[\]]|\$")


@dataclass(frozen=True)
class ScoredSpan:
    """Characters start..end-1 of the completion are the scored trace."""

    start: int
    end: int

    def trace(self, completion: str) -> str:
        """The scored characters of the completion this span was computed from."""
        return completion[self.start : self.end]

    def stripped_tail(self, completion: str) -> str:
        """What was cut off after the trace (the final-answer lines), kept for audit."""
        return completion[self.end :]


def scored_span(completion: str) -> ScoredSpan:
    """The reasoning part of a completion; empty when the completion is only an answer.

    Answer lines that follow one another at the end ("The answer is (I).\nFinal Answer: The
    final answer is $\\boxed{I}$") all go.
    """
    start = len(completion) - len(completion.lstrip())
    end = len(completion.rstrip())
    while end > start:
        text = completion[:end]
        kept, tail = _split_answer_line(text)
        if not tail:
            kept = text[: _answer_sentence_start(text)]
        shorter = len(kept.rstrip())
        if shorter == end:
            break
        end = shorter
    return ScoredSpan(min(start, end), end)


def _answer_sentence_start(text: str) -> int:
    """Where the closing answer sentence starts, or len(text) when the text has none."""
    lines = _lines_with_offsets(text)
    index = _last_content_line(lines, len(lines))
    if index is None:
        return len(text)
    line_start, line = lines[index]
    markers = list(_MARKER.finditer(line))
    sentence_start = _sentence_start(line, len(line.rstrip()))
    if not markers or markers[-1].start() < sentence_start:
        return len(text)  # no answer in the closing sentence
    if sentence_start > 0 or not _is_bare_math(line):
        return line_start + sentence_start
    block_start = line_start
    above = index
    while above > 0 and _is_blank_or_delimiter(lines[above - 1][1]):
        above -= 1
        block_start = lines[above][0]
    lead_index = _last_content_line(lines, above)
    if lead_index is None:
        return block_start
    lead_start, lead = lines[lead_index]
    if _is_unfinished(lead):
        return lead_start + _sentence_start(lead, len(lead.rstrip()))
    return block_start


def _lines_with_offsets(text: str) -> list[tuple[int, str]]:
    out = []
    offset = 0
    for line in text.splitlines(keepends=True):
        out.append((offset, line))
        offset += len(line)
    return out


def _last_content_line(lines: list[tuple[int, str]], before: int) -> int | None:
    for index in range(before - 1, -1, -1):
        line = lines[index][1]
        if not (_is_blank_or_delimiter(line) or _BOILERPLATE_LINE.match(line)):
            return index
    return None


def _is_blank_or_delimiter(line: str) -> bool:
    return not line.strip() or bool(_DELIMITER_LINE.match(line))


def _sentence_start(line: str, position: int) -> int:
    """Start of the sentence holding `position`: after the last '. ', '! ' or '? ' before it."""
    start = 0
    for match in _SENTENCE_END.finditer(line, 0, position):
        start = match.end()
    return start


def _is_bare_math(line: str) -> bool:
    """True when the line is only a boxed answer and math delimiters (no words around it)."""
    rest = line
    while (match := _BOX.search(rest)) is not None:
        depth, end = 1, match.end()
        while end < len(rest) and depth:
            depth += {"{": 1, "}": -1}.get(rest[end], 0)
            end += 1
        rest = rest[: match.start()] + rest[end:]
    return not re.search(r"[A-Za-z]{2,}", _MATH_DELIMITERS.sub("", rest))


def _is_unfinished(line: str) -> bool:
    """A lead-in like 'Thus, the answer is:' or '... will be' (not a finished sentence)."""
    stripped = line.rstrip()
    return bool(stripped) and (
        stripped.endswith(":") or stripped[-1].isalnum() or stripped.endswith(",")
    )


def _split_answer_line(text: str) -> tuple[str, str]:
    """(reasoning, tail) by the first rule; an empty tail: no answer line closes the text."""
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
    """The record cut to its scored span, frontier tokens cut at the same characters.

    A frontier token that straddles a cut keeps its logprob for the part that remains; a record
    that is only an answer is returned unchanged (there would be nothing left to score).
    """
    span = scored_span(record.trace)
    if span.end <= span.start or (span.start, span.end) == (0, len(record.trace)):
        return record
    kept = tokens_in_span(record.token_texts, span.start, span.end)
    meta = {**record.meta, "stripped_answer_text": span.stripped_tail(record.trace)}
    return replace(
        record,
        trace=span.trace(record.trace),
        token_texts=tuple(text for _, text in kept),
        token_logprobs=tuple(record.token_logprobs[i] for i, _ in kept),
        meta=meta,
    )
