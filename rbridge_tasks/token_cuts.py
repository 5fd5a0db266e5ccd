"""Cut a frontier model's tokens to a character span of the text they spell."""

from __future__ import annotations

from collections.abc import Sequence


def tokens_in_span(texts: Sequence[str], start: int, end: int) -> list[tuple[int, str]]:
    """(index, clipped text) of the tokens that produce characters start..end-1.

    A token straddling a boundary keeps its logprob for the part inside. An empty-text token
    (a partial character) is kept when the character it starts lies inside the span.
    """
    kept: list[tuple[int, str]] = []
    position = 0
    for index, text in enumerate(texts):
        token_start, token_end = position, position + len(text)
        position = token_end
        if text:
            if token_start < end and token_end > start:
                kept.append((index, text[max(start - token_start, 0) : end - token_start]))
        elif start <= token_start < end:
            kept.append((index, ""))
    return kept
