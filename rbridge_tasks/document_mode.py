"""Document mode: one `rbridge_document` request per trace, answered from one forward pass.

lm-eval dispatches every request to `getattr(lm, instance.request_type)` (lm-eval-facts.md,
section 2), so a task may ask for a request type of its own. An `rbridge_document` request carries
`(context, trace)`; `hf-rbridge` and `vllm-rbridge` answer it with a `DocumentResponse`, from one
tokenization of `context + trace` (with character offsets) and one pass of the model over it.
This module holds what both backends share: the encoding rules, the over-length rules and the
response. The task computes every number from the response (`scoring.py`).

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

from rbridge_tasks.errors import RBridgeError, follow_lm_eval_logging
from rbridge_tasks.proxy_tokenizer import ProxyTokenizer

logger = logging.getLogger(__name__)
REQUEST_TYPE = "rbridge_document"
TOP_K = 5
RESPONSE_VERSION = 2  # bumped when a response field changes meaning (2: rank counts ties, >=)


@dataclass(frozen=True, repr=False)
class DocumentResponse:
    """A backend's answer to one `rbridge_document` request; arrays have one row per scored token.

    - `token_ids`, `offsets`: the scored proxy tokens and their [start, end) character spans in
      `context + trace`, as the tokenizer reports them.
    - `logprobs` (float64 of the backend's float32): log p(token | everything before it).
    - `entropy` (float32): entropy (nats) of the proxy's next-token distribution at that
      position; NaN where the backend sees only the top tokens (vLLM).
    - `rank`: the number of vocabulary entries whose float32 logprob is at least the token's,
      the token included (vLLM's definition: a tie counts against the token).
    - `top_logprobs` (float32): the `TOP_K` highest logprobs at that position, best first.
    - `vocab_size`: the size of the distribution (for normalised entropy).
    - `context_tokens`: context tokens the model saw; `truncated_tokens`: context tokens dropped
      from the left to fit the model's window.
    """

    token_ids: np.ndarray
    offsets: np.ndarray
    logprobs: np.ndarray
    entropy: np.ndarray
    rank: np.ndarray
    top_logprobs: np.ndarray
    vocab_size: int
    context_tokens: int
    truncated_tokens: int

    def __str__(self) -> str:
        # lm-eval writes str(response) into the samples file: keep it one short line, since the
        # per-document numbers are already there as metrics.
        return (
            f"DocumentResponse({len(self.token_ids)} scored tokens, {self.context_tokens} context "
            f"tokens, {self.truncated_tokens} truncated, logprob sum {self.logprobs.sum():.6g})"
        )

    __repr__ = __str__


@dataclass(frozen=True)
class EncodedDocument:
    """The model's input for one document: `ids[first_scored:]` are the scored tokens."""

    ids: list[int]
    first_scored: int
    offsets: list[tuple[int, int]]  # of the scored tokens
    truncated_tokens: int


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
    texts = [context + trace for context, trace in requests]
    out, cut = [], []
    for (context, trace), encoding, name in zip(
        requests, tokenizer.encode(texts), names, strict=True
    ):
        scored = scored_tokens(encoding.offsets, len(context))
        if not trace or not scored:
            raise RBridgeError(f"{name}: the trace has no proxy tokens")
        first, last = scored[0], scored[-1]
        ids = list(encoding.ids[: last + 1])
        if first == 0:  # nothing before the trace: condition on the prefix token, as lm-eval does
            if prefix_token_id is None:
                raise RBridgeError(f"{name}: the context is empty and the model has no BOS/EOS")
            ids, first = [prefix_token_id, *ids], 1
        n_scored = len(ids) - first
        if n_scored > window - 1:
            raise RBridgeError(
                f"{name}: the trace alone is {n_scored} proxy tokens, more than the model's "
                f"max_length of {max_length} tokens allows ({window - 1}); shorten or drop the "
                "trace, or use a model with a longer context"
            )
        truncated = max(0, len(ids) - window)
        if truncated:
            cut.append(name)
        out.append(
            EncodedDocument(
                ids=ids[truncated:],
                first_scored=first - truncated,
                offsets=[tuple(o) for o in encoding.offsets[first : last + 1]],
                truncated_tokens=truncated,
            )
        )
    if cut:  # one line for the run, not lm-eval's warning per request
        logger.warning(
            "%d document(s) are longer than the model's max_length of %d tokens; their context "
            "was cut from the left (samples: context_truncated_tokens): %s%s",
            len(cut), max_length, ", ".join(cut[:10]), " ..." if len(cut) > 10 else "",
        )  # fmt: skip
    return out


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
        own = entry[doc.ids[p]]
        logprobs.append(own.logprob)
        ranks.append(own.rank)
        best = sorted((lp.logprob for lp in entry.values()), reverse=True)[:TOP_K]
        top[row, : len(best)] = best
    rank = np.asarray(ranks, dtype=np.int32)
    return DocumentResponse(
        token_ids=np.asarray(doc.ids[doc.first_scored :], dtype=np.int32),
        offsets=np.asarray(doc.offsets, dtype=np.int32).reshape(-1, 2),
        logprobs=np.asarray(logprobs, dtype=np.float64),
        entropy=np.full(len(positions), np.nan, dtype=np.float32),
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


def _not_supported(self: LM, requests, disable_tqdm: bool = False):
    raise RBridgeError(
        f"the model backend {type(self).__name__} cannot answer rBridge document requests "
        "(--metadata scoring=document); run `rbridge eval --model hf-rbridge` (or vllm-rbridge), "
        "or pass --metadata scoring=pieces to score through this backend's loglikelihood"
    )


# Every lm-eval model answers the request type, most of them with the error above: without it a
# stock backend asked for document mode would fail with an AttributeError deep in the evaluator.
if not hasattr(LM, REQUEST_TYPE):
    setattr(LM, REQUEST_TYPE, _not_supported)
