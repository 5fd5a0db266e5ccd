"""The proxy's tokenizer, encoding text exactly as lm-eval's `hf` and `vllm` backends do.

Every backend that answers `rbridge_document` tokenizes `context + trace` itself (as does the
task, for `minmax_scope=benchmark`, before any model runs), and the scored tokens and their
weights must be those the model reads, so the encoding must be lm-eval's own: the tokenizer's
default special tokens unless the `add_bos_token` model arg says otherwise, and none when the
text already starts with the BOS string (`TemplateLM.tok_encode`, `has_bos_prefix`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, first_line
from rbridge_tasks.core.options import parse_flag


def proxy_name(metadata: Mapping[str, Any]) -> str:
    """The proxy tokenizer's name or path: `tokenizer`, else the model's `pretrained`."""
    name = metadata.get("tokenizer") or metadata.get("pretrained")
    if not isinstance(name, str) or not name:
        raise RBridgeError(
            "cannot tell which tokenizer the proxy model uses: lm-eval passed no "
            "'pretrained' model arg; pass --metadata tokenizer=NAME_OR_PATH"
        )
    return name


@dataclass(frozen=True)
class Encoding:
    """One text's token ids, as lm-eval feeds them, and each token's [start, end) characters."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class ProxyTokenizer:
    """A fast Hugging Face tokenizer wrapped to add special tokens exactly as lm-eval would.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerFast
        The proxy model's tokenizer; a slow one has no character offsets and is refused.
    add_bos_token : bool or None
        lm-eval's model arg: None keeps the tokenizer's default special tokens.
    prefix_token_id : int or None
        lm-eval's model arg: a text that already starts with this token's text gets no special
        tokens added; by default the BOS token, else EOS, as lm-eval's `prefix_token_id`.

    Raises
    ------
    RBridgeError
        The tokenizer is not a fast one.
    """

    def __init__(
        self, tokenizer: Any, add_bos_token: bool | None = None, prefix_token_id: int | None = None
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise RBridgeError(
                f"the proxy tokenizer {getattr(tokenizer, 'name_or_path', tokenizer)!r} is a slow "
                "(Python) tokenizer; rBridge needs a fast tokenizer's character offsets"
            )
        self.tokenizer = tokenizer
        self.add_bos_token = add_bos_token
        prefix = prefix_token_id
        if prefix is None:
            prefix = (
                tokenizer.bos_token_id
                if tokenizer.bos_token_id is not None
                else tokenizer.eos_token_id
            )
        self._bos_text = tokenizer.decode(prefix) if prefix is not None else None
        self.name = str(getattr(tokenizer, "name_or_path", ""))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ProxyTokenizer:
        """Load the tokenizer lm-eval will use, from the model args merged into task metadata."""
        from transformers import AutoTokenizer

        name = proxy_name(metadata)
        kwargs: dict[str, Any] = {
            "trust_remote_code": parse_flag(metadata, "trust_remote_code", False)
        }
        revision = metadata.get("tokenizer_revision") or metadata.get("revision")
        if revision:
            kwargs["revision"] = str(revision)
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True, **kwargs)
        except Exception as exc:  # transformers raises OSError/ValueError/HF hub errors
            raise RBridgeError(
                f"could not load the proxy tokenizer {name!r} ({first_line(exc)}); pass "
                "--metadata tokenizer=NAME_OR_PATH naming the tokenizer lm-eval's model uses"
            ) from exc
        add_bos = None
        if metadata.get("add_bos_token") is not None:
            add_bos = parse_flag(metadata, "add_bos_token", False)
        prefix = metadata.get("prefix_token_id")
        return cls(tokenizer, add_bos, None if prefix is None else int(prefix))

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        """Token ids (as lm-eval gets them) and character offsets for each text."""
        out: list[Encoding | None] = [None] * len(texts)
        by_special: dict[bool | None, list[int]] = {}
        for i, text in enumerate(texts):
            by_special.setdefault(self._special_tokens_for(text), []).append(i)
        for special, indices in by_special.items():
            kwargs = {} if special is None else {"add_special_tokens": special}
            batch = self.tokenizer(
                [texts[i] for i in indices],
                return_offsets_mapping=True,
                return_attention_mask=False,
                **kwargs,
            )
            for i, ids, offsets in zip(
                indices, batch["input_ids"], batch["offset_mapping"], strict=True
            ):
                out[i] = Encoding(list(ids), [tuple(o) for o in offsets])
        return out  # type: ignore[return-value]

    def _special_tokens_for(self, text: str) -> bool | None:
        if self._bos_text and text.startswith(self._bos_text):
            return False
        return self.add_bos_token
