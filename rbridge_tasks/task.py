"""`RBridgeTask`: the lm-eval task behind every `rbridge_<benchmark>` YAML.

It asks stock backends for one `loglikelihood` per proxy-token piece of the trace (see
`request_plan`) and turns their answers into the rBridge numbers of `method.md`.
"""

from __future__ import annotations

import logging

import datasets
import numpy as np
from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

import rbridge_tasks.metrics  # noqa: F401  (registers the metric names the YAMLs use)
from rbridge_tasks.documents import TaskSettings, build_documents
from rbridge_tasks.errors import RBridgeError
from rbridge_tasks.proxy_tokenizer import ProxyTokenizer
from rbridge_tasks.request_plan import RequestPlan, plan_requests
from rbridge_tasks.scoring import approximated_units, score_document, token_weights
from rbridge_tasks.weights import character_weights

logger = logging.getLogger(__name__)


class RBridgeTask(ConfigurableTask):
    def __init__(self, config: dict | None = None) -> None:
        config = dict(config or {})
        config.pop("class", None)  # lm-eval hands the YAML's `class:` key through
        self.settings = TaskSettings.from_metadata(config.get("metadata") or {})
        self._proxy_tokenizer: ProxyTokenizer | None = None
        self._plans: dict[str, tuple[RequestPlan, np.ndarray]] = {}
        self._warned_split = False
        super().__init__(config=config)

    def download(self, dataset_kwargs=None, **kwargs) -> None:
        docs = build_documents(self.settings)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})

    @property
    def proxy_tokenizer(self) -> ProxyTokenizer:
        """Loaded on first use: listing or validating tasks needs no tokenizer."""
        if self._proxy_tokenizer is None:
            self._proxy_tokenizer = ProxyTokenizer.from_metadata(self.config.metadata or {})
        return self._proxy_tokenizer

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        plan = plan_requests(
            ctx, doc["trace"], self.proxy_tokenizer, self.config.target_delimiter, doc_id=doc["id"]
        )
        chars = character_weights(doc["frontier_token_texts"], doc["frontier_weights"])
        weights = token_weights(plan, chars)
        self._check_split(doc["id"], plan, weights)
        self._plans[doc["id"]] = (plan, weights)
        return [
            Instance(request_type="loglikelihood", doc=doc, arguments=arguments, idx=i, **kwargs)
            for i, arguments in enumerate(plan.requests)
        ]

    def _check_split(self, doc_id: str, plan: RequestPlan, weights: np.ndarray) -> None:
        """Say so when tokens that carry different weights could only be scored together."""
        units = approximated_units(plan, weights)
        if not units:
            return
        pieces = [plan.text[plan.units[i].char_start : plan.units[i].char_end] for i in units]
        message = (
            f"{self.config.task}: document {doc_id!r}: the proxy tokenizer re-tokenizes the text "
            f"before {len(units)} group(s) of tokens differently, e.g. {pieces[:3]}, so lm-eval "
            "can only score each group as a whole; its tokens share the group's mean NLL"
        )
        if self.settings.strict_split:
            raise RBridgeError(message + " (strict_split=true)")
        if not self._warned_split:
            logger.warning(
                message + "; set --metadata strict_split=true to fail instead. "
                "Further documents are reported at debug level."
            )
            self._warned_split = True
        else:
            logger.debug(message)

    def process_results(self, doc: dict, results: list[tuple[float, bool]]) -> dict[str, float]:
        if doc["id"] not in self._plans:
            raise RBridgeError(
                f"{self.config.task}: no requests were built for document {doc['id']!r} in this "
                "run; the rBridge tasks do not support --cache_requests"
            )
        plan, weights = self._plans[doc["id"]]
        score = score_document(plan, weights, [ll for ll, _ in results])
        return {
            "rbridge_nll": score.rbridge_nll,
            "trace_nll": score.trace_nll,
            "trace_bpb": score.trace_bpb,
            "rbridge_nll_sum": score.weighted_sum,
            "rbridge_weight_sum": score.weight_sum,
        }
