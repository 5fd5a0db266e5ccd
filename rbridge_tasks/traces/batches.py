"""Fixed batches over a whole work list, so a resumed job repeats the same computation.

Padding makes a batched model's numbers depend (by rounding, and for greedy decoding possibly by
a different argmax) on the batch a document shares. Batches are therefore cut from the full,
ordered work list, never from what is left of it: a batch that was partly written before an
interruption is recomputed whole and only its missing members are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def batches_with_work(
    items: Sequence[T], size: int, is_done: Callable[[T], bool]
) -> Iterator[Sequence[T]]:
    """The fixed batches of `items` that still hold at least one item not done."""
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        if not all(is_done(item) for item in batch):
            yield batch
