"""Shared fixtures: tiny models built once per session, real benchmark data from shared/data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker (and its subprocesses): workers already fill the cores,
    # and oversubscribed thread pools made tiny-model steps many times slower
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest
import torch
from tiny_models import DATA_DIR, build_tiny_lm
from trace_fixtures import real_texts, record, write_jsonl

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "gsm8k" / "test.jsonl").is_file():
        pytest.fail(
            f"the real benchmark data is missing: expected {DATA_DIR} (shared/data beside "
            "the repository); set up the checkout as described in the README"
        )
    return DATA_DIR


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory, data_dir) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("gpt2"), family="gpt2", seed=0)


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, data_dir) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("llama"), family="llama", seed=1)


@pytest.fixture(scope="session")
def frontier_dir(tmp_path_factory, data_dir) -> Path:
    """A stand-in 'frontier' model whose teacher-forced logprobs give the trace confidences."""
    return build_tiny_lm(tmp_path_factory.mktemp("frontier"), family="gpt2", seed=7, n_layer=1)


@pytest.fixture(scope="session")
def llama3_dir(tmp_path_factory, data_dir) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("llama3"), family="llama3", seed=2)


@pytest.fixture(scope="session")
def gsm8k_pack(tmp_path_factory, frontier_dir) -> Path:
    """Three real GSM8K traces with the stand-in frontier's confidences."""
    records = [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 3)]
    return write_jsonl(tmp_path_factory.mktemp("gsm8k") / "gsm8k.jsonl", records)
