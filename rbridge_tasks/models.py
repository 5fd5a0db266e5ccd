"""Register `hf-rbridge` and `vllm-rbridge` with lm-eval without importing them.

lm-eval resolves a "module:Class" placeholder on first use, so `vllm-rbridge` costs nothing (and
needs no vLLM) until someone asks for it. lm-eval's own models are registered first: `get_model`
only loads them when the registry is empty.
"""

from __future__ import annotations

import lm_eval.models  # noqa: F401
from lm_eval.api.registry import model_registry

MODELS = {
    "hf-rbridge": "rbridge_tasks.hf_rbridge:HFRBridgeLM",
    "vllm-rbridge": "rbridge_tasks.vllm_rbridge:VLLMRBridgeLM",
}


for _name, _target in MODELS.items():
    if _name not in model_registry:
        model_registry.register(_name, target=_target)
