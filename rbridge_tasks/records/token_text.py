"""Per-token texts that concatenate exactly to the decoded text.

A character's weight comes from the frontier token that produced it, so every token needs a text
and the texts must add up to the trace character for character. Byte-level tokenizers break
this: a token can end in the middle of a UTF-8 character (an emoji is four byte tokens). The rule
used everywhere here (local models, vLLM, OpenAI `bytes`):

    a character belongs to the token that completes it. A token that only starts (or continues)
    a character gets the empty text and keeps its own logprob.

So token texts never contain half characters, nothing is merged, the number of tokens and their
logprobs are exactly what the model emitted, and the concatenation is exactly the decoded text.
Bytes that never complete a character (invalid UTF-8) decode to U+FFFD like every decoder does and
are attributed the same way; a replacement character still pending when the text ends goes to
the last token.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

_REPLACEMENT = "\ufffd"


def texts_from_ids(tokenizer, ids: Sequence[int]) -> list[str]:
    """Token texts by incremental decoding (special tokens give '').

    Each token's text is what it adds to the decoded text, which keeps SentencePiece word
    markers and first-token space handling right. A sliding window (the last committed tokens as
    left context, as vLLM and TGI detokenize) keeps this linear in the length; if a tokenizer's
    decoding depends on more context than that, the window's result does not add up to the full
    decode and whole prefixes are decoded instead (exact, quadratic).
    """
    texts = _texts_in_window(tokenizer, ids)
    if texts is not None and "".join(texts) == _decode(tokenizer, ids):
        return texts
    return texts_from_prefixes(tokenizer, ids)


def texts_from_prefixes(tokenizer, ids: Sequence[int]) -> list[str]:
    """The exact (quadratic) form of `texts_from_ids`, for any decoder.

    A token's text is the part of the final decoded text that the prefix ending in it is the
    first to decode as in the end. This is the rule above for partial characters (the pending
    prefix ends in U+FFFD, not the character), and it also covers decoders whose earlier output
    changes with later tokens (byte-fallback groups that turn out to be invalid UTF-8 become
    U+FFFD as a whole, owned by the token that ends the group).
    """
    full = _decode(tokenizer, ids)
    texts: list[str] = []
    settled = 0
    for end in range(1, len(ids) + 1):
        decoded = full if end == len(ids) else _decode(tokenizer, ids[:end])
        agree = next(
            (i for i, (a, b) in enumerate(zip(decoded, full, strict=False)) if a != b),
            min(len(decoded), len(full)),
        )
        if end < len(ids) and decoded.endswith(_REPLACEMENT):
            # pending partial characters stay pending, even where the final text has U+FFFD
            agree = min(agree, len(decoded.rstrip(_REPLACEMENT)))
        new_settled = max(settled, agree)
        texts.append(full[settled:new_settled])
        settled = new_settled
    return texts


def _texts_in_window(tokenizer, ids: Sequence[int]) -> list[str] | None:
    texts: list[str] = []
    context_start = read = 0
    context_text = ""
    for end in range(1, len(ids) + 1):
        decoded = _decode(tokenizer, ids[context_start:end])
        if decoded.endswith(_REPLACEMENT) and end < len(ids):
            texts.append("")
            continue
        if not decoded.startswith(context_text):
            return None
        texts.append(decoded[len(context_text) :])
        context_start, read = read, end
        context_text = _decode(tokenizer, ids[context_start:read])
    return texts


def _decode(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def texts_from_bytes(chunks: Sequence[bytes]) -> list[str]:
    """Token texts from each token's raw bytes (OpenAI `bytes`), by incremental UTF-8 decoding."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    texts = [decoder.decode(chunk) for chunk in chunks]
    tail = decoder.decode(b"", final=True)
    if tail:  # bytes of a character never completed; there were bytes, so a last token
        texts[-1] += tail
    return texts


def tokens_in_span(texts: Sequence[str], start: int, end: int) -> list[tuple[int, str]]:
    """(index, clipped text) of the frontier tokens that produce characters start..end-1 of the
    text they spell (the scored span of a reply, a trace without its answer line).

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
