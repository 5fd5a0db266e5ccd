"""Whether the Hugging Face hub can be reached, asked before a download.

Offline, transformers and datasets retry for a minute and end in a chained traceback; asking
first lets every caller fail in one line that says which local file to pass instead.
"""

from __future__ import annotations

import os
import socket
from contextvars import ContextVar
from functools import lru_cache
from urllib.parse import urlparse

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")

# How the caller's user names the benchmark-questions folder: a task reads `--metadata data_dir`,
# `rbridge traces` has `--data-dir`; the traces CLI sets this so shared messages name its flag.
DATA_DIR_OPTION: ContextVar[str] = ContextVar("DATA_DIR_OPTION", default="--metadata data_dir")


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (an offline variable, or no connection), else None."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name}={os.environ[name]}"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    return _no_connection(endpoint.hostname or "huggingface.co", port)


@lru_cache(maxsize=4)
def _no_connection(host: str, port: int) -> str | None:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        return f"no connection to {host}:{port}: {exc}"
    return None
