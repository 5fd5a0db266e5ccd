"""The model names this package adds to lm-eval, and the classes behind them (the one table of
them: `rbridge eval`, the Python API, lm-eval's registry and the help text read it;
`pyproject.toml`'s entry points repeat it for lm-eval's proposed plugin loader, and a test
checks that they agree)."""

from __future__ import annotations

MODELS = {
    "hf-rbridge": "rbridge_tasks.backends.hf:HFRBridgeLM",
    "vllm-rbridge": "rbridge_tasks.backends.vllm:VLLMRBridgeLM",
}
