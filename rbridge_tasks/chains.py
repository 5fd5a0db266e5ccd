"""Chains of `loglikelihood` requests that one forward pass can answer.

Requests arriving in a row where each one's tokens (context + continuation, as lm-eval encodes
them) extend the previous one's are a chain: under a causal model every request's log-probability
is a slice of one pass over the longest. The rBridge tasks emit exactly such runs (one request per
proxy token of a trace); the stock backends would re-run the whole prefix for each.

Backend-independent: `hf-rbridge` and `vllm-rbridge` supply per-position log-probabilities of the
longest text, this module turns them into each request's `(logprob, is_greedy)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Member:
    request: int  # index in the backend's request list
    context_length: int  # tokens before the scored ones
    length: int  # context + continuation tokens


@dataclass(frozen=True)
class Chain:
    tokens: tuple[int, ...]  # the longest member's tokens; every member's are a prefix
    members: tuple[Member, ...]

    def answers(
        self,
        logprobs: Sequence[float],
        greedy: np.ndarray,
        total: Callable[[Sequence[float]], float],
    ) -> list[tuple[float, bool]]:
        """Each member's (summed logprob, all tokens greedy) from per-position values.

        Position p scores token p + 1 given tokens [0, p]: `logprobs[p]`, and whether it was the
        argmax: `greedy[p]`; both have len(tokens) - 1 entries. `total` sums a slice the way the
        backend's stock code does (float32 tensor sum, Python float sum), so results match it
        to the last bit wherever the per-position values do.
        """
        misses = np.concatenate([[0], np.cumsum(~np.asarray(greedy, dtype=bool))])
        out = []
        for m in self.members:
            first, last = m.context_length - 1, m.length - 1
            out.append((float(total(logprobs[first:last])), bool(misses[last] == misses[first])))
        return out


def find_chains(
    requests: Sequence[tuple[Sequence[int], Sequence[int]]], max_tokens: int
) -> tuple[list[Chain], list[int]]:
    """Split encoded (context, continuation) requests into chains and the rest.

    Requests longer than `max_tokens` (those the backend would truncate on the left) and runs of
    a single request are left for the stock code path, which answers them unchanged.
    """
    chains: list[Chain] = []
    leftover: list[int] = []
    run: list[tuple[int, int]] = []  # (request, length) of the run so far; lengths never shrink
    longest_served: list[int] = []

    def close_run() -> None:
        served = [(i, n) for i, n in run if n <= max_tokens]
        leftover.extend(i for i, n in run if n > max_tokens)
        if len(served) < 2:
            leftover.extend(i for i, _ in served)
        else:
            members = tuple(Member(i, len(requests[i][0]), n) for i, n in served)
            chains.append(Chain(tuple(longest_served), members))
        run.clear()

    previous: list[int] = []
    for i, (context, continuation) in enumerate(requests):
        sequence = [*context, *continuation]
        if not (run and sequence[: len(previous)] == previous):
            close_run()
        run.append((i, len(sequence)))
        if len(sequence) <= max_tokens:
            longest_served = sequence
        previous = sequence
    close_run()
    leftover.sort()
    return chains, leftover


def batches(chains: list[Chain], batch_size: int) -> list[list[Chain]]:
    """Longest first, as lm-eval orders its own batches (padding stays small, OOMs come early)."""
    ordered = sorted(chains, key=lambda c: -len(c.tokens))
    size = batch_size if batch_size > 0 else max(len(ordered), 1)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
