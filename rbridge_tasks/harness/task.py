"""`RBridgeTask`: the lm-eval task behind every `rbridge_<benchmark>` YAML, and `DocumentTask`,
what it shares with the baselines' and the span-mask tasks.

Each document is one `rbridge_document` request (`backends.response`), whatever the model:
`hf-rbridge`/`vllm-rbridge` answer it from one forward pass, every other lm-eval model through
its own `loglikelihood` (`backends.pieces`). Every number is computed here from the response, in
one place: the weights (`formula.weights`) and the per-document numbers (`formula.numbers`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import datasets
import numpy as np
from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from rbridge_tasks.backends.response import (
    REQUEST_TYPE,
    DocumentResponse,
    scored_tokens,
    trace_spans,
)
from rbridge_tasks.backends.tokenizer import ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError, follow_lm_eval_logging
from rbridge_tasks.formula.numbers import rbridge_numbers, token_statistics
from rbridge_tasks.formula.weights import confidences, proxy_token_weights
from rbridge_tasks.harness.documents import build_documents
from rbridge_tasks.harness.options import TaskSettings
from rbridge_tasks.harness.registration import (
    install_document_answer,
    register_metrics,
    template_config,
)

logger = logging.getLogger(__name__)


class DocumentTask(ConfigurableTask):
    """What every task asking `rbridge_document` requests shares: its metrics and the request
    type registered before lm-eval builds it, its options read before lm-eval builds its
    documents (`configure`), the data-parallel check, the response check, and one warning per
    kind of problem.

    Parameters
    ----------
    config : dict
        The YAML's config; `metadata` carries the options. Keys it lacks come from the
        package's template YAML (`TEMPLATE`), so a task YAML of the user's own needs only
        `task`, `class` and `metadata`.
    """

    TEMPLATE = "_default_template_yaml"
    strict_split = False

    def __init__(self, config: dict | None = None) -> None:
        config = {**template_config(self.TEMPLATE), **(config or {})}
        config.pop("class", None)  # lm-eval hands the YAML's `class:` key through
        register_metrics(config.get("metric_list") or ())
        install_document_answer()
        follow_lm_eval_logging()
        self._warned: set[str] = set()
        self.configure(config.get("metadata") or {})
        super().__init__(config=config)

    def configure(self, metadata: dict[str, Any]) -> None:
        """Read the task's options; lm-eval builds the documents (`download`) right after."""
        raise NotImplementedError

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

    def checked(self, response: Any) -> DocumentResponse:
        if not isinstance(response, DocumentResponse):
            raise RBridgeError(
                f"{self.config.task}: the model answered a document request with "
                f"{type(response).__name__}, not rBridge's DocumentResponse; its class "
                "overrides `rbridge_document` without returning one"
            )
        return response

    def grouped(self, message: str) -> None:
        """A stock backend could score tokens that count differently only as one group."""
        if self.strict_split:
            raise RBridgeError(message + " (strict_split=true)")
        self._warn_once(
            "split",
            message + "; set --metadata strict_split=true to fail instead, or use --model "
            "hf-rbridge (or vllm-rbridge), which is exact",
        )

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            logger.warning(message + ". Further documents are reported at debug level.")
            self._warned.add(kind)
        else:
            logger.debug(message)


class RBridgeTask(DocumentTask):
    """An lm-eval task over the documents of one benchmark's trace pack; `metadata` carries
    the options (`harness.options.TaskSettings`)."""

    def configure(self, metadata: dict[str, Any]) -> None:
        self.settings = TaskSettings.from_metadata(metadata)
        self.strict_split = self.settings.strict_split
        self._scale: tuple[float, float] | None = None  # the benchmark's MinMax range

    def delimiter(self, doc: dict) -> str:
        """Between the context and the trace: none for `context=concat`; an lm-eval task's own
        target delimiter after its prompt; else the YAML's `target_delimiter`."""
        if self.settings.context == "concat":
            return ""
        return doc.get("delimiter", self.config.target_delimiter)

    def download(self, dataset_kwargs=None, **kwargs) -> None:
        docs, provenance = build_documents(self.settings)
        if self.settings.minmax_scope == "benchmark":
            self._scale = self._benchmark_range(docs)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        if isinstance(self.config.metadata, dict):  # reported in results["configs"][task]
            self.config.metadata.update(self.settings.resolved() | provenance)

    def _benchmark_range(self, docs: list[dict[str, Any]]) -> tuple[float, float]:
        """min and max, over every document of the benchmark, of the values MinMax maps: read
        before any model runs, so the proxy's tokenizer comes from the model args."""
        if self.settings.minmax_on == "frontier_tokens":
            values = np.concatenate([confidences(d["frontier_logprobs"]) for d in docs])
        else:
            tokenizer = ProxyTokenizer.from_metadata(self.config.metadata or {})
            contexts = [d["prompt"] + self.delimiter(d) for d in docs]
            texts = [c + d["trace"] for c, d in zip(contexts, docs, strict=True)]
            values = np.concatenate(
                [
                    self._weights(
                        doc,
                        trace_spans(
                            [enc.offsets[i] for i in scored_tokens(enc.offsets, len(context))],
                            len(context),
                        ),
                        scale=None,
                    )[1]
                    for doc, context, enc in zip(
                        docs, contexts, tokenizer.encode(texts), strict=True
                    )
                ]
            )
        return float(values.min()), float(values.max())

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        arguments = (ctx + self.delimiter(doc), doc["trace"])
        return [Instance(REQUEST_TYPE, doc=doc, arguments=arguments, idx=0, **kwargs)]

    def process_results(self, doc: dict, results: list) -> dict[str, float]:
        (response,) = results
        response = self.checked(response)
        weights, raw = self._weights(doc, response.spans.tolist(), self._scale)
        if response.groups is not None:
            self._check_groups(doc, response, weights)
        out = rbridge_numbers(-response.logprobs, weights, doc["trace"], self.settings.aggregation)
        if out["rbridge_zero_weight"]:
            self._warn_once(
                "zero",
                f"{self.config.task}: every proxy-token weight of document {doc['id']!r} (and "
                "maybe others) is 0; its weighted mean falls back to the plain mean, and samples "
                "flag it as rbridge_zero_weight=1",
            )
        if response.rank is not None:
            out |= token_statistics(
                response.logprobs, response.rank, response.top_logprobs, response.entropy,
                response.vocab_size, raw, self.settings.last_tokens,
            )  # fmt: skip
        if response.truncated_tokens is not None:
            out["context_truncated_tokens"] = response.truncated_tokens
        return out

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

    def _check_groups(self, doc: dict, response: DocumentResponse, weights: np.ndarray) -> None:
        """Say so when tokens that carry different weights could only be scored together."""
        groups = response.groups
        mixed = [g for g in np.unique(groups) if np.ptp(weights[groups == g]) > 0]
        if not mixed:
            return
        pieces = []
        for g in mixed[:3]:
            where = np.flatnonzero(groups == g)
            start, end = response.spans[where[0], 0], response.spans[where[-1], 1]
            pieces.append(doc["trace"][max(start, 0) : end])
        message = (
            f"{self.config.task}: document {doc['id']!r}: the proxy tokenizer re-tokenizes the "
            f"text before {len(mixed)} group(s) of tokens differently, e.g. {pieces}, so "
            "lm-eval can only score each group as a whole; its tokens share the group's mean NLL"
        )
        self.grouped(message)


def documents_in_run(available: int, limit: float | None, samples: list | None) -> int:
    """How many documents lm-eval evaluates given `--limit` (a count, or a fraction below 1,
    as `lm_eval.evaluator_utils.get_sample_size` reads it) or `--samples`."""
    if samples is not None:
        return len(samples)
    if limit is None:
        return available
    return min(available, math.ceil(available * limit) if limit < 1 else int(limit))
