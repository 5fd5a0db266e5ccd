"""Token texts: exact concatenation, partial characters go to the completing token, span cuts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from rbridge_tasks.records.token_text import (
    texts_from_bytes,
    texts_from_ids,
    texts_from_prefixes,
    tokens_in_span,
)

SLOW_FIXTURE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected_texts_from_bytes(chunks: list[bytes]) -> list[str]:
    """Independent rule: each character goes to the token holding its last byte."""
    data = b"".join(chunks)
    text = data.decode("utf-8")
    ends = []  # end byte offset of each token
    total = 0
    for chunk in chunks:
        total += len(chunk)
        ends.append(total)
    out = [""] * len(chunks)
    position = 0
    for char in text:
        position += len(char.encode("utf-8"))
        owner = next(i for i, end in enumerate(ends) if end >= position)
        out[owner] += char
    return out


@given(st.text(min_size=1, max_size=40), st.data())
def test_bytes_partial_characters_go_to_the_completing_token(text, data):
    raw = text.encode("utf-8")
    cuts = sorted(
        data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=len(raw))) if len(raw) > 1 else []
    )
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    texts = texts_from_bytes(chunks)
    assert "".join(texts) == text
    assert texts == expected_texts_from_bytes(chunks)


def test_bytes_emoji_split_over_four_tokens():
    chunks = [b"a ", b"\xf0", b"\x9f", b"\xa6", b"\x86", b"!"]
    assert texts_from_bytes(chunks) == ["a ", "", "", "", "🦆", "!"]


def test_bytes_never_completed_are_replacement_characters_on_the_last_token():
    assert texts_from_bytes([b"ok", b"\xe2\x80"]) == ["ok", "\ufffd"]


@pytest.fixture(scope="module")
def tokenizers(gpt2_dir, llama_dir):
    return {
        "gpt2": AutoTokenizer.from_pretrained(gpt2_dir),
        "llama": AutoTokenizer.from_pretrained(llama_dir),
    }


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@SLOW_FIXTURE
@given(data=st.data())
def test_ids_texts_join_to_the_full_decode(tokenizers, family, data):
    tokenizer = tokenizers[family]
    ids = data.draw(st.lists(st.integers(0, len(tokenizer) - 1), min_size=1, max_size=30))
    texts = texts_from_ids(tokenizer, ids)
    full = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert "".join(texts) == full
    assert len(texts) == len(ids)
    assert texts == texts_from_prefixes(tokenizer, ids)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_ids_texts_of_real_text_with_multibyte_characters(tokenizers, family):
    tokenizer = tokenizers[family]
    text = "Janet’s ducks 🦆 sell at 2 € each; naïve café."
    ids = tokenizer(text, add_special_tokens=False).input_ids
    texts = texts_from_ids(tokenizer, ids)
    assert "".join(texts) == text
    # the emoji's byte tokens: all but the last are empty, the last carries the whole emoji
    owner = next(i for i, t in enumerate(texts) if "🦆" in t)
    assert texts[owner].strip() == "🦆"
    byte_tokens = len("🦆".encode()) - 1
    assert texts[owner - byte_tokens : owner] == [""] * byte_tokens


def test_context_hungry_decoder_falls_back_to_exact_prefix_decoding():
    """A decoder stripping up to three leading spaces depends on more than the window sees."""
    vocab = {"a": 0, "Ġ": 1, "b": 2, "Ġb": 3}
    model = models.BPE(vocab=vocab, merges=[("Ġ", "b")])
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 3, 0)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok)
    ids = [1, 1, 1, 3, 0]  # "   " + " b" + "a": the whole text loses its first three spaces
    texts = texts_from_ids(tokenizer, ids)
    assert "".join(texts) == tokenizer.decode(ids) == " ba"
    assert texts == texts_from_prefixes(tokenizer, ids)


@given(st.lists(st.text(max_size=4), min_size=1, max_size=12), st.data())
def test_span_cut_clips_texts_and_keeps_partial_character_tokens(texts, data):
    text = "".join(texts)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    kept = tokens_in_span(texts, start, end)
    assert "".join(t for _, t in kept) == text[start:end]
    indices = [i for i, _ in kept]
    assert indices == sorted(set(indices))
    # an empty token is kept exactly when the character it starts lies inside the span
    offset = 0
    for index, piece in enumerate(texts):
        if piece == "":
            assert (index in indices) == (start <= offset < end)
        offset += len(piece)
