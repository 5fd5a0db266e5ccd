"""The paper's baselines (method.md, "Baselines"), scored on the same documents as rBridge.

`rbridge_baselines_<benchmark>` asks, for each document, for the proxy's log-probability of three
continuations of the same context:

- `gold`: the benchmark's own reference answer (GSM8K and MATH solutions, the correct option's
  text, HumanEval's canonical solution): `gold_nll` (mean per token) and `gold_bpb`;
- `scalingbench`: the frontier trace followed by the gold answer line, ScalingBench-style:
  `scalingbench_nll`, `scalingbench_bpb`;
- `mpca`: the final answer alone (the option letter for multiple choice): `mpca`, the proxy's
  probability of the correct answer, and `mpca_nll`. HumanEval has no short final answer and
  reports no MPCA.

Document mode (`hf-rbridge`/`vllm-rbridge`) sends `rbridge_document` requests and counts the
tokens covering the continuation; pieces mode (stock backends) sends `loglikelihood` requests,
whose token count lm-eval's encoding rule gives (the context's trailing whitespace moves onto the
continuation).
"""

from __future__ import annotations

import math

from lm_eval.api.instance import Instance

from rbridge_tasks.document_mode import REQUEST_TYPE, DocumentResponse
from rbridge_tasks.errors import RBridgeError
from rbridge_tasks.metrics import BASELINE_METRICS, metric_list
from rbridge_tasks.task import RBridgeTask


def continuations(doc: dict) -> dict[str, str]:
    out = {
        "gold": doc["gold_text"],
        "scalingbench": f"{doc['trace']}\nThe answer is {doc['gold']}.",
    }
    if doc["benchmark"] != "humaneval":
        out["mpca"] = doc["gold"]
    return out


class BaselineTask(RBridgeTask):
    def __init__(self, config: dict | None = None) -> None:
        config = dict(config or {})
        config["metric_list"] = metric_list(BASELINE_METRICS)
        super().__init__(config=config)
        self._contexts: dict[str, str] = {}

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        kind = REQUEST_TYPE if self.settings.scoring == "document" else "loglikelihood"
        context = ctx if kind == "loglikelihood" else ctx + self.delimiter
        self._contexts[doc["id"]] = ctx
        return [
            Instance(
                kind,
                doc=doc,
                arguments=(context, self.delimiter + text if kind == "loglikelihood" else text),
                idx=i,
                **kwargs,
            )
            for i, text in enumerate(continuations(doc).values())
        ]

    def process_results(self, doc: dict, results: list) -> dict[str, float]:
        texts = continuations(doc)
        if self.settings.scoring == "document":
            if not all(isinstance(r, DocumentResponse) for r in results):
                raise RBridgeError(
                    f"{self.config.task}: document requests need hf-rbridge or vllm-rbridge"
                )
            sums = [float(r.logprobs.sum()) for r in results]
            counts = [len(r.logprobs) for r in results]
        else:
            ctx = self._contexts[doc["id"]]
            sums = [float(ll) for ll, _ in results]
            counts = self._pieces_token_counts(ctx, list(texts.values()))
        out: dict[str, float] = {}
        for (name, text), total, count in zip(texts.items(), sums, counts, strict=True):
            if name == "mpca":
                out["mpca"] = math.exp(total)
                out["mpca_nll"] = -total
            else:
                out[f"{name}_nll"] = -total / count
                out[f"{name}_bpb"] = -total / math.log(2) / len(text.encode("utf-8"))
        return out

    def _pieces_token_counts(self, ctx: str, texts: list[str]) -> list[int]:
        """Tokens lm-eval scores for (ctx, delimiter + text): encode(whole) beyond encode(ctx)."""
        stripped = (ctx + self.delimiter).rstrip()
        encodings = self.proxy_tokenizer.encode(
            [stripped, *[ctx + self.delimiter + text for text in texts]]
        )
        base = len(encodings[0].ids)
        return [max(len(e.ids) - base, 1) for e in encodings[1:]]
