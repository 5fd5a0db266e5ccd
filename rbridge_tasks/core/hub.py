"""Whether the Hugging Face hub can be reached, and where a named model would load from, asked
before a download.

Offline, transformers and datasets retry for a minute and end in a chained traceback; asking
first lets every caller fail in one line that says which local file to pass instead.
"""

from __future__ import annotations

import os
import socket
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from rbridge_tasks.core.errors import RBridgeError, first_line

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


def model_location(name: str, option: str) -> str:
    """Where a model would load from, asked before anything loads, so that failing costs one line.

    Returns `"folder"`, `"cached"` (a hub id while the hub is unreachable, with a copy in its
    local cache: load with `local_files_only`), `"hub"`, or `"unavailable"` (a hub id neither
    reachable nor cached: the caller says what to pass instead). `option` is how the user named
    it, for errors (`--model_args pretrained=DIR`).

    Raises
    ------
    RBridgeError
        A file, a path that does not exist, or a folder that holds no readable model config
        (transformers would say so in 40 lines, or retry the hub for a minute).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            found = sorted(p.name for p in path.iterdir())[:8]
            raise RBridgeError(
                f"{option}: not a model folder (no config.json; it holds {found}); pass a "
                "folder written by save_pretrained"
            )
        from transformers import AutoConfig

        try:
            AutoConfig.from_pretrained(path)
        except Exception as exc:  # transformers raises ValueError/OSError/JSON errors alike
            raise RBridgeError(
                f"{option}: its config.json cannot be read as a model's ({first_line(exc)})"
            ) from exc
        return "folder"
    if path.exists():
        raise RBridgeError(f"{option}: this is a file; pass the model's folder or a hub id")
    # a hub id is NAME or ORG/NAME; anything else can only be a path
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise RBridgeError(f"{option}: no such folder")
    if hub_unreachable() is None:
        return "hub"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid hub id either
        raise RBridgeError(f"{option}: no such folder") from None
    return "cached" if cached else "unavailable"
