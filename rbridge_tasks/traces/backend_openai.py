"""OpenAI-compatible HTTP backend (OpenAI, vLLM's server, ...), on the standard library.

Two endpoints: `/v1/chat/completions` (logprobs with each token's raw `bytes`, as OpenAI
returns them) and `/v1/completions` (legacy; tokens as strings, `bytes:\\xNN` for byte pieces).
Either way the token texts come from the bytes by incremental UTF-8 decoding, so a character
split over tokens goes to the token that completes it (`records.token_text`).

Requests run `concurrency` at a time, results come back in request order, and failures are
retried: HTTP 429 after the server's Retry-After when it sends one, 5xx, timeouts and dropped
connections after an exponential backoff, at most `max_retries` times; every wait is capped
(a longer Retry-After is cut to the cap, with a warning). The timeout bounds a whole request.
An optional requests-per-minute budget spaces requests out before the server has to refuse them.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import queue
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.records.token_text import texts_from_bytes, tokens_in_span
from rbridge_tasks.traces.completions import Completion, GenerationRequest, cut_at_stop

APIS = ("chat", "completions")
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_BYTE_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait after a refused or failed request (seconds)."""

    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (0-based): the server's Retry-After
        when it sent one (it knows its limits), else exponential backoff; either way at most
        the cap, so a server asking for an hour cannot stall a job silently."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_cap)
        return min(self.backoff_base * 2**attempt, self.backoff_cap)


class _RequestSpacing:
    """At most `per_minute` request starts per minute, spread evenly (thread safe)."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class OpenAICompatibleBackend:
    """A model behind an OpenAI-compatible HTTP API, for `generate` (completions only).

    Parameters
    ----------
    model, base_url
        The served model's name and the API root (e.g. `https://api.openai.com/v1`).
    api
        `chat` (`/chat/completions`) or `completions` (the legacy endpoint).
    stop
        Sent to the server, and cut again from the reply's tokens, since servers may return
        the stop sequence's tokens that the text leaves out.
    concurrency, requests_per_minute, retry, timeout
        Requests in flight, the optional rate budget, the retry policy and the limit in
        seconds on one whole request (see the module docstring).

    Raises
    ------
    RBridgeError
        An unknown `api` or a `concurrency` below 1.
    """

    batch_size = None

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api: str = "chat",
        api_key: str | None = None,
        max_new_tokens: int = 1024,
        stop: Sequence[str] = (),
        concurrency: int = 4,
        requests_per_minute: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 600.0,
    ):
        if api not in APIS:
            raise RBridgeError(f"unknown API {api!r}; expected one of {list(APIS)}")
        if concurrency < 1:
            raise RBridgeError("--concurrency must be at least 1")
        self.model_name = model
        self.url = base_url.rstrip("/") + ("/chat/completions" if api == "chat" else "/completions")
        self.api = api
        self.api_key = api_key
        self.max_new_tokens = max_new_tokens
        self.stops = tuple(stop)
        self.concurrency = concurrency
        self.spacing = _RequestSpacing(requests_per_minute)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Fail at once, before an output file exists, when nothing answers at the URL (else
        every request retries for minutes behind a progress bar at 0%)."""
        parts = urllib.parse.urlsplit(self.url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(host):  # urllib will connect to the proxy
            proxied = urllib.parse.urlsplit(proxy)
            host, port = proxied.hostname or "", proxied.port or 80
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise RBridgeError(
                f"{self.url}: cannot connect to {host}:{port} ({exc}); is the server running "
                "and --base-url right?"
            ) from exc

    def complete(self, requests: Sequence[GenerationRequest]) -> Iterator[Completion]:
        """In request order; up to `concurrency` requests in flight on daemon threads, so an
        interrupted run exits at once instead of waiting for the requests still out. After a
        request fails for good no new request starts (the run stops there anyway)."""
        work: queue.Queue[tuple[GenerationRequest, Future] | None] = queue.Queue()
        halt = threading.Event()
        futures: list[Future] = []
        for request in requests:
            future: Future = Future()
            futures.append(future)
            work.put((request, future))
        for _ in range(self.concurrency):
            work.put(None)
            threading.Thread(target=self._worker, args=(work, halt), daemon=True).start()
        try:
            for future in futures:
                yield future.result()
        finally:
            halt.set()
            for future in futures:
                future.cancel()

    def _worker(self, work: queue.Queue, halt: threading.Event) -> None:
        while (item := work.get()) is not None:
            request, future = item
            if halt.is_set() or not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._complete_one(request))
            except BaseException as exc:  # handed to the consumer thread, which raises it
                halt.set()
                future.set_exception(exc)

    def _complete_one(self, request: GenerationRequest) -> Completion:
        body: dict = {
            "model": self.model_name,
            "temperature": 0.0,
            "max_tokens": self.max_new_tokens,
        }
        if self.api == "chat":
            body.update(messages=request.prompt.messages(), logprobs=True)
            prompt_text = request.prompt.user
        else:
            body.update(prompt=request.prompt.completion, logprobs=1)
            prompt_text = request.prompt.completion
        if self.stops:
            body["stop"] = list(self.stops)
        response = self._post(body, request.id)
        try:
            choice = response["choices"][0]
            if self.api == "chat":
                text = choice["message"]["content"] or ""
                entries = (choice.get("logprobs") or {}).get("content")
                if entries is None:
                    raise KeyError("logprobs.content")
                chunks = [
                    bytes(e["bytes"]) if e.get("bytes") is not None else e["token"].encode("utf-8")
                    for e in entries
                ]
                logprobs = [float(e["logprob"]) for e in entries]
            else:
                text = choice["text"]
                logprob_block = choice.get("logprobs") or {}
                if "tokens" not in logprob_block:
                    raise KeyError("logprobs.tokens")
                chunks = [_token_bytes(t) for t in logprob_block["tokens"]]
                logprobs = [float(lp) for lp in logprob_block["token_logprobs"]]
            finish_reason = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RBridgeError(
                f"{self.url}: question {request.id!r}: the response lacks {exc} (the backend "
                f"needs per-token logprobs; does this server support them?)"
            ) from exc
        texts = texts_from_bytes(chunks)
        joined = "".join(texts)
        if not joined.startswith(text):
            raise RBridgeError(
                f"{self.url}: question {request.id!r}: the logprob tokens spell {joined[:60]!r}"
                f"..., not the returned text {text[:60]!r}..."
            )
        # Servers may return the tokens of a stop sequence that the text leaves out.
        kept = tokens_in_span(texts, 0, len(text))
        completion = Completion(
            text=text,
            token_texts=tuple(t for _, t in kept),
            token_logprobs=tuple(logprobs[i] for i, _ in kept),
            token_ids=None,
            finish_reason="length" if finish_reason == "length" else "stop",
            prompt=prompt_text,
        )
        return cut_at_stop(completion, self.stops)

    def _post(self, body: dict, request_id: str) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_problem = ""
        retry_after: float | None = None
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                delay = self.retry.delay(attempt - 1, retry_after)
                if retry_after is not None and retry_after > delay:
                    logger.warning(
                        "%s: question %r: the server asks to wait %.0f s (Retry-After); "
                        "waiting --backoff-cap %g s instead",
                        self.url,
                        request_id,
                        retry_after,
                        delay,
                    )
                time.sleep(delay)
            retry_after = None
            self.spacing.wait()
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            deadline = _Deadline(self.timeout)
            try:
                with deadline.opener().open(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code not in _RETRY_STATUSES:
                    raise RBridgeError(
                        f"{self.url}: question {request_id!r}: HTTP {exc.code}: {detail}"
                    ) from exc
                retry_after = _retry_after_seconds(exc.headers.get("Retry-After"))
                last_problem = f"HTTP {exc.code}: {detail}"
            except (OSError, http.client.HTTPException, ValueError, RecursionError) as exc:
                last_problem = (
                    f"no complete response within --timeout {self.timeout:g} s"
                    if deadline.passed
                    else f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                )
            finally:
                deadline.cancel()
        raise RBridgeError(
            f"{self.url}: question {request_id!r}: giving up after "
            f"{self.retry.max_retries} retries; last error: {last_problem}"
        )


class _Deadline:
    """--timeout for a whole request. urllib's timeout bounds each socket read only, so a server
    sending a byte a second would hold a request forever; at the deadline a timer shuts the
    request's socket down, which ends the read in progress."""

    def __init__(self, seconds: float):
        self.sockets: list[socket.socket] = []
        self.passed = False
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def opener(self) -> urllib.request.OpenerDirector:
        deadline = self

        class HTTP(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(deadline._track(http.client.HTTPConnection), req)

        class HTTPS(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(
                    deadline._track(http.client.HTTPSConnection), req, context=self._context
                )

        return urllib.request.build_opener(HTTP, HTTPS)

    def _track(self, connection_class):
        deadline = self

        class Tracked(connection_class):
            def connect(self) -> None:  # urllib drops `sock` once the headers are read
                super().connect()
                deadline.sockets.append(self.sock)
                if deadline.passed:  # the deadline came while connecting
                    deadline._expire()

        return Tracked

    def _expire(self) -> None:
        self.passed = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self.timer.cancel()


def _token_bytes(token: str) -> bytes:
    """Legacy completions tokens: text, or `bytes:\\xe2\\x80` for pieces of a character."""
    if token.startswith("bytes:"):
        return bytes(int(h, 16) for h in _BYTE_ESCAPE.findall(token[len("bytes:") :]))
    return token.encode("utf-8")


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
