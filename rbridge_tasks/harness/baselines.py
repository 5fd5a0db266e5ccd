"""The paper's baselines (method.md, "Baselines"), scored on the same documents as rBridge.

`rbridge_baselines_<benchmark>` asks, for each document, for the proxy's log-probability of three
continuations of the same context, each one `rbridge_document` request answered like the rBridge
task's (so every backend counts the same tokens: those covering the continuation):

- `gold`: the benchmark's own reference answer (GSM8K and MATH solutions, the correct option's
  text, HumanEval's canonical solution): `gold_nll` (mean per token) and `gold_bpb`;
- `scalingbench`: the frontier trace followed by the gold answer line, ScalingBench-style:
  `scalingbench_nll`, `scalingbench_bpb`;
- `mpca`: the final answer alone (the option letter for multiple choice): `mpca`, the proxy's
  probability of the correct answer, and `mpca_nll`. HumanEval has no short final answer and
  reports no MPCA.
"""

from __future__ import annotations

import math

from lm_eval.api.instance import Instance

from rbridge_tasks.backends.response import REQUEST_TYPE
from rbridge_tasks.harness.task import RBridgeTask


def continuations(doc: dict) -> dict[str, str]:
    out = {
        "gold": doc["gold_text"],
        "scalingbench": f"{doc['trace']}\nThe answer is {doc['gold']}.",
    }
    if doc["benchmark"] != "humaneval":
        out["mpca"] = doc["gold"]
    return out


class BaselineTask(RBridgeTask):
    """The baselines' task: the rBridge task's documents and options, three continuations each."""

    TEMPLATE = "_baselines_template_yaml"

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        context = ctx + self.delimiter(doc)
        return [
            Instance(REQUEST_TYPE, doc=doc, arguments=(context, text), idx=i, **kwargs)
            for i, text in enumerate(continuations(doc).values())
        ]

    def process_results(self, doc: dict, results: list) -> dict[str, float]:
        out: dict[str, float] = {}
        for (name, text), response in zip(continuations(doc).items(), results, strict=True):
            total = float(self.checked(response).logprobs.sum())
            if name == "mpca":
                out["mpca"] = math.exp(total)
                out["mpca_nll"] = -total
            else:
                out[f"{name}_nll"] = -total / len(response.logprobs)
                out[f"{name}_bpb"] = -total / math.log(2) / len(text.encode("utf-8"))
        return out
