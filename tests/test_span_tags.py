"""The two readings of the span-mask traces' `<span>` tags (`records.span_tags`).

`as_released`: against the authors' parser as published (LLM360/rBridge `rbridge/mask.py`,
written out again here from its behaviour: `re.finditer` of `<span>(.*?)<[/\\]span>` without
DOTALL, no match meaning "score the whole text"). Strict: against a character-by-character
scanner written from the README's rules. Both on hand-made cases for every quirk and on
generated tag soups.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbridge_tasks.records.span_tags import released_spans, strict_spans


def authors_extract(text: str):
    """The published `extract_span_offsets`: (clean text, span ranges or None)."""
    pattern = r"<span>(.*?)<[/\\]span>"
    if not re.search(pattern, text):
        return text, None
    ranges, parts, last, position = [], [], 0, 0
    for match in re.finditer(pattern, text):
        parts.append(text[last : match.start()])
        position += match.start() - last
        content = match.group(1)
        ranges.append((position, position + len(content)))
        parts.append(content)
        position += len(content)
        last = match.end()
    parts.append(text[last:])
    return "".join(parts), ranges


def authors_counts(text: str) -> tuple[int, int]:
    clean, ranges = authors_extract(text)
    scored = clean if ranges is None else "".join(clean[s:e] for s, e in ranges)
    return len(scored.split()), len(scored.encode("utf-8"))


OPENING, CLOSINGS = "<span>", ("</span>", "<\\span>")


def strict_reference(text: str) -> tuple[str, list[bool], list[int]]:
    """(clean text, per letter: inside a matched pair, raw positions of unmatched tags), with
    the rule that a text whose pairs mark no letter is scored whole."""
    tags, i = [], 0  # (raw position, length, "open"/"close")
    while i < len(text):
        if text.startswith(OPENING, i):
            tags.append((i, len(OPENING), "open"))
            i += len(OPENING)
        elif any(text.startswith(c, i) for c in CLOSINGS):
            tags.append((i, len(CLOSINGS[0]), "close"))
            i += len(CLOSINGS[0])
        else:
            i += 1
    stack, pairs, unmatched = [], [], []
    for position, _, kind in tags:
        if kind == "open":
            stack.append(position)
        elif stack:
            pairs.append((stack.pop(), position))
        else:
            unmatched.append(position)
    unmatched = sorted(unmatched + stack)
    skip = {p + k for p, length, _ in tags for k in range(length)}
    letters, inside = [], []
    for position, char in enumerate(text):
        if position in skip:
            continue
        letters.append(char)
        inside.append(any(a < position < b for a, b in pairs))
    if not any(inside):
        inside = [True] * len(letters)
    return "".join(letters), inside, unmatched


def letters_of(ranges, length: int) -> list[bool]:
    out = [False] * length
    for start, end in ranges:
        out[start:end] = [True] * (end - start)
    return out


CASES = {
    # reasoning: (authors' clean text, authors' ranges, strict clean text, strict inside text)
    "plain span": ("a <span>b c</span> d", "a b c d", [(2, 5)], "a b c d", ["b c"]),
    "backslash close": ("x<span>y<\\span>z", "xyz", [(1, 2)], "xyz", ["y"]),
    "first token": ("<span>First</span> step", "First step", [(0, 5)], "First step", ["First"]),
    "at the end": ("so <span>42</span>", "so 42", [(3, 5)], "so 42", ["42"]),
    "multi-line": (
        "a <span>b\nc</span> d",
        "a <span>b\nc</span> d",
        None,
        "a b\nc d",
        ["b\nc"],
    ),
    "multi-line and one-line": (
        "<span>p\nq</span> r <span>s</span>",
        "<span>p\nq</span> r s",
        [(19, 20)],
        "p\nq r s",
        ["p\nq", "s"],
    ),
    "nested": (
        "<span>a <span>b</span> c</span> d",
        "a <span>b c</span> d",
        [(0, 9)],
        "a b c d",
        ["a b c"],
    ),
    "no span": ("just text", "just text", None, "just text", ["just text"]),
    "empty span among others": ("<span></span>a <span>b</span>", "a b", [(0, 0), (2, 3)], "a b", ["b"]),
    "only an empty span": ("<span></span>all", "all", [(0, 0)], "all", ["all"]),
    "stray close": ("a</span> <span>b</span>", "a</span> b", [(9, 10)], "a b", ["b"]),
    "unclosed": ("<span>a</span> <span>b", "a <span>b", [(0, 1)], "a b", ["a"]),
    "only unmatched": ("a </span>b<span>", "a </span>b<span>", None, "a b", ["a b"]),
    "adjacent": ("<span>x</span><span>y</span> z", "xy z", [(0, 1), (1, 2)], "xy z", ["xy"]),
}


@pytest.mark.parametrize("name", CASES)
def test_each_quirk_reads_as_written(name):
    reasoning, clean, ranges, strict_clean, inside = CASES[name]
    released = released_spans(reasoning)
    assert released.text == clean
    assert released.spans == (None if ranges is None else tuple(ranges))
    assert (released.text, None if released.spans is None else list(released.spans)) == (
        authors_extract(reasoning)
    )
    strict = strict_spans(reasoning)
    assert strict.text == strict_clean
    assert [strict.text[s:e] for s, e in strict.inside] == inside


def test_word_and_byte_counts_follow_the_authors_joining_of_spans():
    # adjacent spans join into one word; a span without spaces is one word; bytes are UTF-8
    reasoning = "<span>two </span>x<span>wo</span><span>rds é</span> <span>中</span>"
    released = released_spans(reasoning)
    assert (released.words, released.bytes) == authors_counts(reasoning) == (3, 15)
    assert released.scored_text == "two words é中"


def test_the_rules_of_the_strict_reading_are_reported():
    unmatched = strict_spans("a</span> b <span>c")
    assert unmatched.unmatched == (1, 11) and not unmatched.marked and unmatched.marks_nothing
    untagged = strict_spans("plain")
    assert not untagged.tagged and not untagged.marks_nothing
    assert strict_spans("<span>é</span>z").span_bytes == 2


TAG_SOUP = st.lists(
    st.sampled_from(["<span>", "</span>", "<\\span>", "a", "b ", " ", "\n", "é", "中", "<", "span>"]),
    max_size=24,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(TAG_SOUP)
def test_the_released_reading_matches_the_published_parser(reasoning):
    released = released_spans(reasoning)
    clean, ranges = authors_extract(reasoning)
    assert released.text == clean
    assert released.spans == (None if ranges is None else tuple(ranges))
    assert (released.words, released.bytes) == authors_counts(reasoning)


@settings(max_examples=400, deadline=None)
@given(TAG_SOUP)
def test_the_strict_reading_matches_a_character_scanner(reasoning):
    strict = strict_spans(reasoning)
    clean, inside, unmatched = strict_reference(reasoning)
    assert strict.text == clean
    assert letters_of(strict.inside, len(clean)) == inside
    assert list(strict.unmatched) == unmatched
    assert strict.span_bytes == sum(len(c.encode()) for c, i in zip(clean, inside) if i)
