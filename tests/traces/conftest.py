"""Fixtures of the trace-pack tests: the memorised model (built once per session, shared by
xdist workers through a file lock), an OpenAI-compatible server around it, and a text-only pack
of real traces."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
from filelock import FileLock
from memorised_model import build_memorised_lm
from openai_test_server import TinyModelServer

from rbridge_tasks.records.files import write_traces
from rbridge_tasks.traces.importers import import_text_traces


@pytest.fixture(scope="session")
def memorised_dir(tmp_path_factory, data_dir, worker_id) -> Path:
    if worker_id == "master":  # not under xdist
        return build_memorised_lm(tmp_path_factory.mktemp("memorised-gpt2"), data_dir)
    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, common to its workers
    target = shared / "memorised-gpt2"
    with FileLock(str(shared / "memorised-gpt2.lock")):
        if not target.is_dir():
            building = shared / "memorised-gpt2.building"
            build_memorised_lm(building, data_dir)
            building.rename(target)
    return target


@pytest.fixture()
def openai_server(memorised_dir):
    server = TinyModelServer(memorised_dir).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run several times faster on one thread than on two when `pytest -n 2`
    shares two cores (OpenMP threads otherwise spin against each other)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def text_pack(data_dir, tmp_path):
    """Four real GPT-4o-mini GSM8K traces, text only (no confidences yet)."""
    source = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "gsm_*.jsonl"))[0]
    records = import_text_traces("rereading", source, data_dir=data_dir).records[:4]
    path = tmp_path / "gsm8k-text.jsonl"
    write_traces(path, records)
    return path
