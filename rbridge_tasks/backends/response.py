"""The `rbridge_document` request and its answer, shared by every backend.

lm-eval dispatches every request to `getattr(lm, instance.request_type)` (lm-eval-facts.md,
section 2), so a task may ask for a request type of its own. An `rbridge_document` request carries
`(context, trace)`; every model answers it with a `DocumentResponse`: `hf-rbridge` and
`vllm-rbridge` from one tokenization of `context + trace` (with character offsets) and one pass of
the model over it, every other lm-eval model through its own `loglikelihood` (`pieces`). This
module holds what they share: the response, the encoding and over-length rules of the one-pass
backends, the scored-token rule and lm-eval's request cache.

Scored tokens are the proxy tokens that cover trace characters (a token ending at or before the
trace's first character is context, even if it is the delimiter's whitespace). A context longer
than the model's window is truncated from the left, as lm-eval truncates `loglikelihood`
contexts; a trace that alone does not fit is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from lm_eval.api.model import LM, hash_args

from rbridge_tasks.backends.tokenizer import ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError, follow_lm_eval_logging

logger = logging.getLogger(__name__)
REQUEST_TYPE = "rbridge_document"
TOP_K = 5
RESPONSE_VERSION = 3  # bumped when a field changes meaning (2: rank counts ties; 3: spans)


@dataclass(frozen=True, repr=False)
class DocumentResponse:
    """A backend's answer to one `rbridge_document` request; arrays have one row per scored token.

    Attributes
    ----------
    token_ids : numpy.ndarray
        The scored proxy tokens.
    spans : numpy.ndarray
        Their [start, end) character spans relative to the trace's first character, from the
        tokenizer's offsets (a token that begins in the context starts below 0).
    logprobs : numpy.ndarray
        float64: log p(token | everything before it).
    entropy : numpy.ndarray or None
        float32: entropy (nats) of the proxy's next-token distribution at each position; None
        where the backend sees only the top tokens (vLLM) or only sums (`pieces`).
    rank : numpy.ndarray or None
        The number of vocabulary entries whose float32 logprob is at least the token's, the
        token included (vLLM's definition: a tie counts against the token); None from `pieces`.
    top_logprobs : numpy.ndarray or None
        float32: the `TOP_K` highest logprobs at each position, best first; None from `pieces`.
    vocab_size : int or None
        The size of the distribution (for normalised entropy).
    context_tokens : int
        Tokens before the first scored one that the model saw.
    truncated_tokens : int or None
        Context tokens dropped from the left to fit the model's window; None where the backend
        refuses an over-long document instead (`pieces`).
    groups : numpy.ndarray or None
        `pieces` only: for each scored token, the group of consecutive tokens whose summed
        logprob is all the backend's `loglikelihood` could give; each token of a group carries
        the group's mean.
    """

    token_ids: np.ndarray
    spans: np.ndarray
    logprobs: np.ndarray
    entropy: np.ndarray | None
    rank: np.ndarray | None
    top_logprobs: np.ndarray | None
    vocab_size: int | None
    context_tokens: int
    truncated_tokens: int | None
    groups: np.ndarray | None = None

    def __str__(self) -> str:
        # lm-eval writes str(response) into the samples file: keep it one short line, since the
        # per-document numbers are already there as metrics.
        return (
            f"DocumentResponse({len(self.token_ids)} scored tokens, {self.context_tokens} context "
            f"tokens, {self.truncated_tokens or 0} truncated, logprob sum "
            f"{self.logprobs.sum():.6g})"
        )

    __repr__ = __str__


@dataclass(frozen=True)
class EncodedDocument:
    """The model's input for one document: `ids[first_scored:]` are the scored tokens.

    Arrays, not lists: a run holds every document's encoding at once, and Python lists of ints
    and offset tuples cost about 150 bytes per token (0.75 GB for the `rbridge` group's 10,162
    documents, memory that grew with the number of documents), arrays 12.
    """

    ids: np.ndarray  # int64
    first_scored: int
    spans: np.ndarray  # int32, (scored tokens, 2): their spans relative to the trace
    truncated_tokens: int


ENCODE_CHUNK = 256  # documents tokenized per call: the tokenizer's Python lists stay small


def encode_documents(
    tokenizer: ProxyTokenizer,
    requests: Sequence[tuple[str, str]],
    *,
    window: int,
    prefix_token_id: int | None,
    names: Sequence[str],
    max_length: int,
) -> list[EncodedDocument]:
    """Tokenize each `context + trace` once, as lm-eval's backend would, and fit it to `window`.

    `window` is how many tokens (inputs plus the last target) the backend can take: lm-eval's HF
    path feeds at most `max_length` inputs (window `max_length + 1`), its vLLM path at most
    `max_length - 1` prompt tokens. `names` label documents in errors.
    """
    out, cut = [], []
    for start in range(0, len(requests), ENCODE_CHUNK):
        part = requests[start : start + ENCODE_CHUNK]
        encodings = tokenizer.encode([context + trace for context, trace in part])
        for (context, trace), encoding, name in zip(
            part, encodings, names[start : start + ENCODE_CHUNK], strict=True
        ):
            document = _fit(encoding, context, trace, name, window, prefix_token_id, max_length)
            out.append(document)
            if document.truncated_tokens:
                cut.append(name)
    if cut:  # one line for the run, not lm-eval's warning per request
        logger.warning(
            "%d document(s) are longer than the model's max_length of %d tokens; their context "
            "was cut from the left (samples: context_truncated_tokens): %s%s",
            len(cut), max_length, ", ".join(cut[:10]), " ..." if len(cut) > 10 else "",
        )  # fmt: skip
    return out


def _fit(
    encoding,
    context: str,
    trace: str,
    name: str,
    window: int,
    prefix_token_id: int | None,
    max_length: int,
) -> EncodedDocument:
    scored = scored_tokens(encoding.offsets, len(context))
    if not trace or not scored:
        raise RBridgeError(f"{name}: the trace has no proxy tokens")
    first, last = scored[0], scored[-1]
    ids = np.asarray(encoding.ids[: last + 1], dtype=np.int64)
    if first == 0:  # nothing before the trace: condition on the prefix token, as lm-eval does
        if prefix_token_id is None:
            raise RBridgeError(f"{name}: the context is empty and the model has no BOS/EOS")
        ids, first = np.concatenate([[prefix_token_id], ids]), 1
    n_scored = len(ids) - first
    if n_scored > window - 1:
        raise RBridgeError(
            f"{name}: the trace alone is {n_scored} proxy tokens, more than the model's "
            f"max_length of {max_length} tokens allows ({window - 1}); shorten or drop the "
            "trace, or use a model with a longer context"
        )
    truncated = max(0, len(ids) - window)
    spans = trace_spans(encoding.offsets[scored[0] : last + 1], len(context))
    return EncodedDocument(
        ids=ids[truncated:],
        first_scored=first - truncated,
        spans=np.asarray(spans, dtype=np.int32).reshape(-1, 2),
        truncated_tokens=truncated,
    )


def response_from_prompt_logprobs(
    doc: EncodedDocument, prompt_logprobs: Sequence[dict[int, Any] | None], vocab_size: int
) -> DocumentResponse:
    """vLLM's prompt logprobs -> the shared response.

    Entry p scores token p given tokens before it; indexing gives a `{token_id: Logprob}` dict
    (vLLM's nested lists and its `FlatLogprobs` alike) holding the top `TOP_K` tokens and the
    prompt token itself, each with `.logprob` and `.rank` (vLLM counts entries >= the token's).
    """
    positions = range(doc.first_scored, len(doc.ids))
    logprobs, ranks, top = [], [], np.full((len(positions), TOP_K), -np.inf)
    for row, p in enumerate(positions):
        entry = prompt_logprobs[p]
        own = entry[int(doc.ids[p])]
        logprobs.append(own.logprob)
        ranks.append(own.rank)
        best = sorted((lp.logprob for lp in entry.values()), reverse=True)[:TOP_K]
        top[row, : len(best)] = best
    rank = np.asarray(ranks, dtype=np.int32)
    return DocumentResponse(
        token_ids=doc.ids[doc.first_scored :].astype(np.int32),
        spans=doc.spans,
        logprobs=np.asarray(logprobs, dtype=np.float64),
        entropy=None,
        rank=rank,
        top_logprobs=top.astype(np.float32),
        vocab_size=vocab_size,
        context_tokens=doc.first_scored,
        truncated_tokens=doc.truncated_tokens,
    )


def token_budget_chunks(encoded: Sequence[EncodedDocument], budget: int) -> list[range]:
    """Consecutive documents, each run holding at most `budget` tokens (or one document)."""
    chunks: list[range] = []
    start, tokens = 0, 0
    for i, doc in enumerate(encoded):
        if i > start and tokens + len(doc.ids) > budget:
            chunks.append(range(start, i))
            start, tokens = i, 0
        tokens += len(doc.ids)
    if start < len(encoded):
        chunks.append(range(start, len(encoded)))
    return chunks


def with_response_cache(
    lm: LM, requests: Sequence, answer: Callable[[list], list[DocumentResponse]]
) -> list[DocumentResponse]:
    """`answer(requests)`, reading and filling lm-eval's `--use_cache` database when there is one.

    lm-eval's `CachingLM` caches only its own request types and hands ours through; it gives
    the model a hook holding the same database, so document responses are cached there under
    the same rule as lm-eval's (the request's arguments; one database per model). The key
    carries `RESPONSE_VERSION`, so responses computed under an older definition are not reused.
    """
    follow_lm_eval_logging()
    database = getattr(getattr(lm, "cache_hook", None), "dbdict", None)
    if database is None:
        return answer(list(requests))
    keys = [hash_args(f"{REQUEST_TYPE}/{RESPONSE_VERSION}", r.args) for r in requests]
    out: list[DocumentResponse | None] = [database.get(key) for key in keys]
    todo = [i for i, response in enumerate(out) if response is None]
    logger.info(
        "%s: %d of %d responses read from the --use_cache database",
        REQUEST_TYPE, len(keys) - len(todo), len(keys),
    )  # fmt: skip
    if todo:
        for i, response in zip(todo, answer([requests[i] for i in todo]), strict=True):
            out[i] = response
            database[keys[i]] = response
    return out  # type: ignore[return-value]


def trace_spans(offsets: Sequence[tuple[int, int]], trace_start: int) -> list[tuple[int, int]]:
    """Character spans relative to the trace's first character."""
    return [(start - trace_start, end - trace_start) for start, end in offsets]


def scored_tokens(offsets: Sequence[tuple[int, int]], trace_start: int) -> range:
    """The tokens that cover trace characters: from the first to the last whose span ends after
    `trace_start` (special tokens a tokenizer appends, with empty offsets, are left out)."""
    ends = [i for i, (_, end) in enumerate(offsets) if end > trace_start]
    return range(ends[0], ends[-1] + 1) if ends else range(0)


def request_names(requests: Sequence) -> list[str]:
    """`task: document 'id'` for each lm-eval Instance, for errors and logs."""
    names = []
    for request in requests:
        doc = request.doc if isinstance(request.doc, dict) else {}
        names.append(f"{request.task_name}: document {doc.get('id', request.doc_id)!r}")
    return names
