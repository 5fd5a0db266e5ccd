"""Tokenize a whole request list at once, for backends that answer chains in one pass.

lm-eval encodes each `loglikelihood` request on its own (`TemplateLM._encode_pair`: the stripped
context and context + continuation, one tokenizer call each). For a chain of N requests over one
document that is 2N calls on ever longer prefixes, more work than the single forward pass that
answers them. The mixin asks the tokenizer once, in a batch, for every distinct string lm-eval
will need, then lets lm-eval's own `loglikelihood` run unchanged against that cache, so the
encodings (and everything computed from them) are exactly the stock ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType


def request_strings(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The distinct strings `_encode_pair` tokenizes for these (context, continuation) pairs."""
    strings: dict[str, None] = {}
    for context, continuation in pairs:
        if context:  # an empty context takes lm-eval's prefix-token branch instead
            strings[context.rstrip()] = None
            strings[context + continuation] = None
    return list(strings)


class BatchEncodingMixin:
    """Put before the lm-eval model class; subclasses implement `_encode_many`."""

    _encodings: Mapping[str, list[int]] = MappingProxyType({})  # each call binds its own

    def _encode_many(self, strings: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        strings = request_strings(request.args for request in requests)
        self._encodings = dict(zip(strings, self._encode_many(strings), strict=True))
        try:
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        finally:
            self._encodings = {}

    def tok_encode(self, string, add_special_tokens=None, **kwargs):
        if add_special_tokens is None and not kwargs and isinstance(string, str):
            cached = self._encodings.get(string)
            if cached is not None:
                return list(cached)
        return super().tok_encode(string, add_special_tokens=add_special_tokens, **kwargs)
