"""The two readings of the span-mask traces' `<span>` tags (`records.span_tags`).

`as_released`: against the authors' parser as published (LLM360/rBridge `rbridge/mask.py`,
written out again here from its behaviour: `re.finditer` of `<span>(.*?)<[/\\]span>` without
DOTALL, no match meaning "score the whole text"). Strict: against a character-by-character
scanner written from the README's rules. Both on hand-made cases for every quirk and on
generated tag soups.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from span_reference import authors_counts, authors_extract, strict_reference

from rbridge_tasks.records.span_tags import released_spans, strict_spans


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
    "empty span among others": (
        "<span></span>a <span>b</span>",
        "a b",
        [(0, 0), (2, 3)],
        "a b",
        ["b"],
    ),
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
    st.sampled_from(
        ["<span>", "</span>", "<\\span>", "a", "b ", " ", "\n", "é", "中", "<", "span>"]
    ),
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
    assert strict.span_bytes == sum(
        len(c.encode()) for c, i in zip(clean, inside, strict=True) if i
    )
