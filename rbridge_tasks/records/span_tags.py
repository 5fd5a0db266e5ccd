"""The `<span>` tags of the span-mask traces (`trillionlabs/rbridge-mask`), read two ways.

`released_spans` reads them as the authors' scorer does (LLM360/rBridge, `rbridge/mask.py`), so
that the `as_released` numbers reproduce its tables: the non-greedy pattern
`<span>(.*?)<[/\\]span>` without DOTALL. So a span holding a newline is not matched and its tags
stay in the text; `</span>` and `<\\span>` both close; a nested `<span>` ends at the first
closing tag, the inner `<span>` kept as text and the outer closing tag left behind; and a trace
with no match at all is scored whole.

`strict_spans` is this package's reading, for the consistent numbers (README, "Span-mask
tasks"): every tag is removed from the text, whatever it encloses, and the letters inside
matched pairs weigh 1. Spans may cross lines; nested pairs give their union; an empty pair marks
nothing; a closing tag without an open span and a `<span>` never closed are removed and mark
nothing (`unmatched` says where they were); a trace whose tags mark no letter, or that has no tag,
is scored whole, as the authors score a trace without tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN = "<span>"
_RELEASED = re.compile(r"<span>(.*?)<[/\\]span>")
_TAG = re.compile(r"<span>|</span>|<\\span>")

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ReleasedSpans:
    """The authors' reading: the cleaned text and the character ranges of the matched spans in
    it (None where nothing matched: the whole text is scored)."""

    text: str
    spans: Ranges | None

    @property
    def scored_text(self) -> str:
        """What the authors count words and bytes of: the span texts joined with nothing between
        them (so the last word of one span and the first of the next count as one word)."""
        if self.spans is None:
            return self.text
        return "".join(self.text[start:end] for start, end in self.spans)

    @property
    def words(self) -> int:
        return len(self.scored_text.split())

    @property
    def bytes(self) -> int:
        return len(self.scored_text.encode("utf-8"))


@dataclass(frozen=True)
class StrictSpans:
    """This package's reading: the text without any tag; the ranges of it that weigh 1 (sorted,
    disjoint, non-empty; the whole text when no matched pair marks a letter); whether the trace
    had tags; whether a matched pair marks a letter; the raw positions of tags without partner."""

    text: str
    inside: Ranges
    tagged: bool
    marked: bool
    unmatched: tuple[int, ...]

    @property
    def marks_nothing(self) -> bool:
        """Tags were there, but no letter lies inside a matched pair: scored whole."""
        return self.tagged and not self.marked

    @property
    def span_bytes(self) -> int:
        """UTF-8 bytes of the letters that weigh 1: the consistent numbers' denominator."""
        return sum(len(self.text[start:end].encode("utf-8")) for start, end in self.inside)


def released_spans(reasoning: str) -> ReleasedSpans:
    """The authors' `extract_span_offsets`, match for match (module docstring)."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    length = cursor = 0
    for match in _RELEASED.finditer(reasoning):
        before, content = reasoning[cursor : match.start()], match.group(1)
        start = length + len(before)
        parts += [before, content]
        spans.append((start, start + len(content)))
        length = start + len(content)
        cursor = match.end()
    if not spans:
        return ReleasedSpans(reasoning, None)
    parts.append(reasoning[cursor:])
    return ReleasedSpans("".join(parts), tuple(spans))


def strict_spans(reasoning: str) -> StrictSpans:
    """This package's reading: one pass over the tags, a stack pairing each closing tag with the
    latest open `<span>` (module docstring)."""
    parts: list[str] = []
    pairs: list[tuple[int, int]] = []
    opened: list[tuple[int, int]] = []  # (position in the clean text, position in the raw one)
    unmatched: list[int] = []
    length = cursor = 0
    tagged = False
    for match in _TAG.finditer(reasoning):
        tagged = True
        chunk = reasoning[cursor : match.start()]
        parts.append(chunk)
        length += len(chunk)
        cursor = match.end()
        if match.group() == OPEN:
            opened.append((length, match.start()))
        elif opened:
            pairs.append((opened.pop()[0], length))
        else:
            unmatched.append(match.start())
    parts.append(reasoning[cursor:])
    text = "".join(parts)
    inside = _union(pairs)
    marked = bool(inside)
    if not marked:
        inside = ((0, len(text)),) if text else ()
    return StrictSpans(
        text, inside, tagged, marked, tuple(sorted(unmatched + [raw for _, raw in opened]))
    )


def _union(pairs: list[tuple[int, int]]) -> Ranges:
    merged: list[list[int]] = []
    for start, end in sorted(p for p in pairs if p[1] > p[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start, end) for start, end in merged)
