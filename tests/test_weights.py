"""method.md's weights: MinMax of frontier confidences, spread onto characters, averaged over
each proxy token's characters."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rbridge_tasks.formula.weights import confidences, letter_values, minmax, span_means

frontier_tokens = st.lists(
    st.tuples(
        st.text(min_size=0, max_size=6),  # any Unicode, whitespace and empty pieces included
        st.floats(min_value=-30, max_value=0, allow_nan=False),
    ),
    min_size=1,
    max_size=30,
).filter(lambda toks: "".join(t for t, _ in toks) != "")


@st.composite
def trace_and_proxy_spans(draw):
    tokens = draw(frontier_tokens)
    trace = "".join(t for t, _ in tokens)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(trace) - 1)), max_size=len(trace))))
    bounds = [0, *[c for c in cuts if 0 < c < len(trace)], len(trace)]
    return tokens, trace, list(pairwise(bounds))


def weights_of(tokens):
    return minmax(confidences([lp for _, lp in tokens]))


@given(trace_and_proxy_spans())
def test_weights_stay_in_unit_interval(case):
    tokens, _, spans = case
    char_w = letter_values([len(t) for t, _ in tokens], weights_of(tokens))
    token_w = span_means(char_w, spans)
    assert np.all((token_w >= 0) & (token_w <= 1))
    assert np.all((char_w >= 0) & (char_w <= 1))


@given(trace_and_proxy_spans(), st.floats(min_value=-20, max_value=0))
def test_one_shared_confidence_gives_equal_weights(case, logprob):
    tokens, _, spans = case
    same = [(t, logprob) for t, _ in tokens]
    token_w = span_means(letter_values([len(t) for t, _ in same], weights_of(same)), spans)
    assert np.all(token_w == 1.0)


@given(trace_and_proxy_spans())
def test_characters_are_neither_lost_nor_double_counted(case):
    tokens, trace, spans = case
    weights = weights_of(tokens)
    char_w = letter_values([len(t) for t, _ in tokens], weights)
    assert len(char_w) == len(trace)  # one weight per code point
    position = 0
    for (text, _), w in zip(tokens, weights, strict=True):
        assert np.all(char_w[position : position + len(text)] == w)
        position += len(text)
    token_w = span_means(char_w, spans)
    lengths = np.array([end - start for start, end in spans])
    assert math.isclose(float((token_w * lengths).sum()), float(char_w.sum()), abs_tol=1e-9)


def test_a_proxy_token_spanning_several_frontier_tokens_takes_the_character_mean():
    # frontier: "ab" (c=1.0) "c" (c=0.5) "de" (c=0.25) -> MinMax: 1, 1/3, 0
    tokens = [("ab", 0.0), ("c", math.log(0.5)), ("de", math.log(0.25))]
    char_w = letter_values([len(t) for t, _ in tokens], weights_of(tokens))
    np.testing.assert_allclose(char_w, [1, 1, 1 / 3, 0, 0])
    # proxy tokens "abc", "d", "e" and an empty (special) token
    token_w = span_means(char_w, [(0, 3), (3, 4), (4, 5), (5, 5)])
    np.testing.assert_allclose(token_w, [(1 + 1 + 1 / 3) / 3, 0, 0, 0])


def test_characters_are_code_points_not_bytes():
    char_w = letter_values([len("é😀"), len("中")], [0.2, 0.9])
    np.testing.assert_allclose(char_w, [0.2, 0.2, 0.9])


def test_benchmark_scope_uses_the_given_range():
    np.testing.assert_allclose(minmax(np.array([0.5, 0.75]), low=0.25, high=1.0), [1 / 3, 2 / 3])
    assert minmax(np.array([0.3, 0.3])).tolist() == [1.0, 1.0]


def test_spans_outside_the_trace_carry_no_weight():
    char_w = np.array([0.5, 1.0])
    np.testing.assert_allclose(span_means(char_w, [(-2, 0), (-1, 1), (1, 5)]), [0, 0.5, 1.0])


@pytest.mark.parametrize("logprob", [-1e-9, 0.0])
def test_confidence_of_a_near_certain_token_is_one(logprob):
    assert confidences([logprob])[0] == pytest.approx(1.0)


def test_hand_computed_example_of_every_option():
    """Three frontier tokens, four proxy tokens, each option's value written out by hand.

    Trace "abcde": frontier "ab" (p=0.8), "c" (p=0.4), "de" (p=0.2).
    Proxy tokens "a", "bc", "d", "e"; proxy NLLs 1, 2, 3, 4.
    """
    from rbridge_tasks.formula.numbers import rbridge_numbers
    from rbridge_tasks.formula.weights import proxy_token_weights

    lengths, logprobs = [2, 1, 2], np.log([0.8, 0.4, 0.2])
    spans, nll = [(0, 1), (1, 3), (3, 4), (4, 5)], np.array([1.0, 2.0, 3.0, 4.0])

    # Algorithm 1: raw letter means v = 0.8, (0.8 + 0.4)/2 = 0.6, 0.2, 0.2; MinMax over them
    w, v = proxy_token_weights(lengths, logprobs, spans)
    np.testing.assert_allclose(v, [0.8, 0.6, 0.2, 0.2])
    np.testing.assert_allclose(w, [1.0, 2 / 3, 0.0, 0.0])
    numbers = rbridge_numbers(nll, w, "abcde", "mean")
    assert numbers["rbridge_nll"] == pytest.approx((1 + 4 / 3) / 4)  # 0.58333
    assert numbers["rbridge_nll_sum"] == pytest.approx(7 / 3)
    assert numbers["rbridge_weight_sum"] == pytest.approx(5 / 3)
    assert numbers["trace_tokens"] == 4
    assert rbridge_numbers(nll, w, "abcde", "weighted_mean")["rbridge_nll"] == pytest.approx(1.4)
    assert rbridge_numbers(nll, w, "abcde", "sum")["rbridge_nll"] == pytest.approx(7 / 3)
    assert numbers["trace_nll"] == pytest.approx(2.5)
    assert numbers["trace_bpb"] == pytest.approx(10 / math.log(2) / 5)

    # minmax_on=frontier_tokens: frontier 0.8, 0.4, 0.2 -> 1, 1/3, 0; letter means per token
    w, _ = proxy_token_weights(lengths, logprobs, spans, minmax_on="frontier_tokens")
    np.testing.assert_allclose(w, [1.0, (1 + 1 / 3) / 2, 0.0, 0.0])
    assert rbridge_numbers(nll, w, "abcde")["rbridge_nll"] == pytest.approx((1 + 4 / 3) / 4)

    # minmax_scope=benchmark with a benchmark range [0.1, 0.9] of the proxy-token values
    w, _ = proxy_token_weights(lengths, logprobs, spans, scale=(0.1, 0.9))
    np.testing.assert_allclose(w, [7 / 8, 5 / 8, 1 / 8, 1 / 8])
    assert rbridge_numbers(nll, w, "abcde")["rbridge_nll"] == pytest.approx(
        (7 / 8 + 10 / 8 + 3 / 8 + 4 / 8) / 4
    )


def test_all_weights_zero_falls_back_to_the_plain_mean_and_is_flagged():
    from rbridge_tasks.formula.numbers import rbridge_numbers

    nll = np.array([1.0, 3.0])
    weighted = rbridge_numbers(nll, np.zeros(2), "ab", "weighted_mean")
    assert weighted["rbridge_nll"] == 2.0 and weighted["rbridge_zero_weight"] == 1.0
    assert rbridge_numbers(nll, np.zeros(2), "ab", "mean")["rbridge_nll"] == 0.0
    assert rbridge_numbers(nll, np.ones(2), "ab", "mean")["rbridge_zero_weight"] == 0.0
