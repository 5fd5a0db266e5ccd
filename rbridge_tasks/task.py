"""`RBridgeTask`: the lm-eval task behind every `rbridge_<benchmark>` YAML.

Two ways to get the proxy's per-token NLLs (`--metadata scoring=...`):

- `document`: one `rbridge_document` request per trace, answered by `hf-rbridge`/`vllm-rbridge`
  from one forward pass (`document_mode.py`); exact per token, linear in the trace's length.
- `pieces` (the default under plain lm-eval, for stock backends): one `loglikelihood` request per
  proxy token (`request_plan.py`), quadratic in the trace's length.

Either way the numbers come from `scoring.py` and the weights from `weights.py`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import datasets
import numpy as np
from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from rbridge_tasks.document_mode import REQUEST_TYPE, DocumentResponse, scored_tokens
from rbridge_tasks.documents import TaskSettings, build_documents
from rbridge_tasks.errors import RBridgeError, follow_lm_eval_logging
from rbridge_tasks.metrics import metric_list
from rbridge_tasks.proxy_tokenizer import ProxyTokenizer, model_max_length
from rbridge_tasks.request_plan import RequestPlan, plan_requests
from rbridge_tasks.scoring import rbridge_numbers, token_statistics
from rbridge_tasks.weights import confidences, proxy_token_weights

logger = logging.getLogger(__name__)


class RBridgeTask(ConfigurableTask):
    def __init__(self, config: dict | None = None) -> None:
        config = dict(config or {})
        config.pop("class", None)  # lm-eval hands the YAML's `class:` key through
        config.setdefault("metric_list", metric_list())
        follow_lm_eval_logging()
        self.settings = TaskSettings.from_metadata(config.get("metadata") or {})
        self._proxy_tokenizer: ProxyTokenizer | None = None
        self._scale: tuple[float, float] | None = None  # the benchmark's MinMax range
        self._trace_start: dict[str, int] = {}
        self._plans: dict[str, RequestPlan] = {}
        self._max_length: int | None = None
        self._warned: set[str] = set()
        super().__init__(config=config)

    @property
    def delimiter(self) -> str:
        return "" if self.settings.context == "concat" else self.config.target_delimiter

    def download(self, dataset_kwargs=None, **kwargs) -> None:
        docs, provenance = build_documents(self.settings)
        if self.settings.minmax_scope == "benchmark":
            self._scale = self._benchmark_range(docs)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        if isinstance(self.config.metadata, dict):  # reported in results["configs"][task]
            self.config.metadata.update(self.settings.resolved() | provenance)

    @property
    def proxy_tokenizer(self) -> ProxyTokenizer:
        """Loaded on first use: listing tasks and document mode need no tokenizer."""
        if self._proxy_tokenizer is None:
            self._proxy_tokenizer = ProxyTokenizer.from_metadata(self.config.metadata or {})
        return self._proxy_tokenizer

    def _benchmark_range(self, docs: list[dict[str, Any]]) -> tuple[float, float]:
        """min and max, over every document of the benchmark, of the values MinMax maps."""
        if self.settings.minmax_on == "frontier_tokens":
            values = np.concatenate([confidences(d["frontier_logprobs"]) for d in docs])
        else:
            contexts = [d["prompt"] + self.delimiter for d in docs]
            texts = [c + d["trace"] for c, d in zip(contexts, docs, strict=True)]
            values = np.concatenate(
                [
                    self._weights(doc, _trace_spans(enc.offsets, len(ctx)), scale=None)[1]
                    for doc, ctx, enc in zip(
                        docs, contexts, self.proxy_tokenizer.encode(texts), strict=True
                    )
                ]
            )
        return float(values.min()), float(values.max())

    def build_all_requests(self, *, rank: int = 0, world_size: int = 1, **kwargs) -> None:
        """lm-eval's, refusing in one line a data-parallel run with fewer documents than ranks.

        lm-eval cannot run a task on a rank that gets no document: that rank fails ("did not
        find any docs"), the others wait for it at their barriers (and at `hf-rbridge`'s batch
        size probe), and rank 0 cannot merge the metrics it never computed. Every rank counts
        the same documents, so every rank stops with the same message.
        """
        if world_size > 1:
            documents = documents_in_run(
                len(self.eval_docs), kwargs.get("limit"), kwargs.get("samples")
            )
            if documents < world_size:
                raise RBridgeError(
                    f"{self.config.task}: {documents} document(s) for {world_size} "
                    "data-parallel ranks; lm-eval needs at least one document per rank: run "
                    "it with fewer processes (or more documents, e.g. a larger --limit)"
                )
        super().build_all_requests(rank=rank, world_size=world_size, **kwargs)

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        context = ctx + self.delimiter
        self._trace_start[doc["id"]] = len(context)
        if self.settings.scoring == "document":
            return [
                Instance(REQUEST_TYPE, doc=doc, arguments=(context, doc["trace"]), idx=0, **kwargs)
            ]
        self._check_length(doc["id"], context + doc["trace"])
        plan = plan_requests(
            ctx, doc["trace"], self.proxy_tokenizer, self.delimiter, doc_id=doc["id"]
        )
        self._plans[doc["id"]] = plan
        return [
            Instance("loglikelihood", doc=doc, arguments=arguments, idx=i, **kwargs)
            for i, arguments in enumerate(plan.requests)
        ]

    def process_results(self, doc: dict, results: list) -> dict[str, float]:
        if doc["id"] not in self._trace_start:
            raise RBridgeError(
                f"{self.config.task}: no requests were built for document {doc['id']!r} in this "
                "run; the rBridge tasks do not support --cache_requests"
            )
        start = self._trace_start[doc["id"]]
        if self.settings.scoring == "document":
            (response,) = results
            if not isinstance(response, DocumentResponse):
                raise RBridgeError(
                    f"{self.config.task}: the model returned {type(response).__name__} for a "
                    "document request; only hf-rbridge and vllm-rbridge answer them"
                )
            spans = [(s - start, e - start) for s, e in response.offsets.tolist()]
            nll = -response.logprobs
            weights, raw = self._weights(doc, spans, self._scale)
            out = self._numbers(doc, nll, weights)
            out.update(token_statistics(response, raw, self.settings.last_tokens))
            out["context_truncated_tokens"] = response.truncated_tokens
            return out
        plan = self._plans[doc["id"]]
        per_token = plan.token_nlls([ll for ll, _ in results])
        scored = list(scored_tokens(plan.token_spans, start))
        spans = [(s - start, e - start) for s, e in (plan.token_spans[i] for i in scored)]
        weights, _ = self._weights(doc, spans, self._scale)
        self._check_split(doc["id"], plan, scored, weights)
        return self._numbers(doc, per_token[scored], weights)

    def _weights(
        self, doc: dict, spans: list[tuple[int, int]], scale: tuple[float, float] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return proxy_token_weights(
            doc["frontier_token_chars"],
            doc["frontier_logprobs"],
            spans,
            minmax_on=self.settings.minmax_on,
            scale=scale,
        )

    def _numbers(self, doc: dict, nll: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        out = rbridge_numbers(nll, weights, doc["trace"], self.settings.aggregation)
        if out["rbridge_zero_weight"]:
            self._warn_once(
                "zero",
                f"{self.config.task}: every proxy-token weight of document {doc['id']!r} (and "
                "maybe others) is 0; its weighted mean falls back to the plain mean, and samples "
                "flag it as rbridge_zero_weight=1",
            )
        return out

    def _check_length(self, doc_id: str, text: str) -> None:
        """Stock backends cut each request's context on its own, so a document longer than the
        model would mix windows shifted by a token: refuse it (before planning its requests)
        instead of a wrong number."""
        if self._max_length is None:
            self._max_length = model_max_length(self.config.metadata or {}, self.proxy_tokenizer)
        tokens = len(self.proxy_tokenizer.encode([text])[0].ids)
        limit = self._max_length - 1
        if tokens > limit:
            raise RBridgeError(
                f"{self.config.task}: document {doc_id!r} is {tokens} proxy tokens (context and "
                f"trace), more than the {limit} that a stock backend scores without truncating; "
                "pieces mode cannot score it consistently. Use document mode (`rbridge eval "
                "--model hf-rbridge`), which truncates the context once, or drop the document"
            )

    def _check_split(
        self, doc_id: str, plan: RequestPlan, scored: list[int], weights: np.ndarray
    ) -> None:
        """Say so when tokens that carry different weights could only be scored together."""
        token_weight = np.zeros(len(plan.token_spans))
        token_weight[scored] = weights
        k0 = plan.units[0].first
        units = [
            u
            for u in plan.units
            if u.end - u.first > 1 and np.ptp(token_weight[u.first - k0 : u.end - k0]) > 0
        ]
        if not units:
            return
        pieces = [plan.text[u.char_start : u.char_end] for u in units]
        message = (
            f"{self.config.task}: document {doc_id!r}: the proxy tokenizer re-tokenizes the text "
            f"before {len(units)} group(s) of tokens differently, e.g. {pieces[:3]}, so lm-eval "
            "can only score each group as a whole; its tokens share the group's mean NLL"
        )
        if self.settings.strict_split:
            raise RBridgeError(message + " (strict_split=true)")
        self._warn_once(
            "split",
            message + "; set --metadata strict_split=true to fail instead, or use document "
            "mode, which is exact",
        )

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            logger.warning(message + ". Further documents are reported at debug level.")
            self._warned.add(kind)
        else:
            logger.debug(message)


def _trace_spans(offsets: list, trace_start: int) -> list[tuple[int, int]]:
    """Spans, relative to the trace, of the tokens document mode scores (`scored_tokens`)."""
    return [
        (offsets[i][0] - trace_start, offsets[i][1] - trace_start)
        for i in scored_tokens(offsets, trace_start)
    ]


def documents_in_run(available: int, limit: float | None, samples: list | None) -> int:
    """How many documents lm-eval evaluates given `--limit` (a count, or a fraction below 1,
    as `lm_eval.evaluator_utils.get_sample_size` reads it) or `--samples`."""
    if samples is not None:
        return len(samples)
    if limit is None:
        return available
    return min(available, math.ceil(available * limit) if limit < 1 else int(limit))
