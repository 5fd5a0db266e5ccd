"""Fixtures of the trace-pack tests: the memorised model (built once per session, shared by
xdist workers through a file lock) and an OpenAI-compatible server around it."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock
from memorised_model import build_memorised_lm
from openai_test_server import TinyModelServer


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
