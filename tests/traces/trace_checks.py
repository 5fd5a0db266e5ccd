"""Independent re-computations the trace tests compare against, and the tiny hf model they run."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rbridge_tasks.traces.backend_hf import HFModel

LOGPROB_TOLERANCE = 1e-4


@cache
def _model(model_dir: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def tokenizer_of(model_dir: Path):
    return _model(str(model_dir))[1]


def forward_logprobs(model_dir: Path, context_ids: list[int], ids: list[int]) -> list[float]:
    """log p(ids[i] | context, ids[:i]) from one plain forward pass over the whole sequence."""
    import torch

    model, _ = _model(str(model_dir))
    with torch.no_grad():
        logits = model(torch.tensor([context_ids + ids])).logits[0].float()
    steps = logits.log_softmax(-1)
    first = len(context_ids)
    return [steps[first - 1 + i, token].item() for i, token in enumerate(ids)]


def assert_close(actual, expected, tolerance: float = LOGPROB_TOLERANCE) -> None:
    assert len(actual) == len(expected)
    worst = max((abs(a - b) for a, b in zip(actual, expected, strict=True)), default=0.0)
    assert worst <= tolerance, f"largest logprob difference {worst:.2e} > {tolerance:g}"


def generated_record_logprobs_match(record, model_dir: Path) -> None:
    """A generated record's frontier logprobs against a forward pass over prompt + completion."""
    tokenizer = tokenizer_of(model_dir)
    meta = record.meta
    completion_ids = meta["completion_token_ids"]
    prompt_ids = list(tokenizer(meta["prompt"]).input_ids)
    expected = forward_logprobs(model_dir, prompt_ids, completion_ids)
    start = meta["trace_token_start"]
    assert_close(list(record.token_logprobs), expected[start : start + len(record.token_logprobs)])
    decoded = tokenizer.decode(
        completion_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    assert decoded.startswith(meta["completion"])
    assert meta["completion"].strip().startswith(record.trace)


def tiny_hf(model_dir, **kwargs) -> HFModel:
    """The hf backend on a tiny model, named 'tiny' in messages and records."""
    return HFModel(str(model_dir), model_name="tiny", dtype="float32", device="cpu", **kwargs)


def needed_tokens(model: HFModel, prompt, trace: str | None) -> int:
    """Prompt plus trace (or plus the new tokens), counted here with the tokenizer itself."""
    prompt_ids = model.tokenizer(prompt.completion).input_ids
    if trace is None:
        return len(prompt_ids) + model.max_new_tokens
    return len(prompt_ids) + len(model.tokenizer(trace, add_special_tokens=False).input_ids)
