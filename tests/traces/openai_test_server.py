"""A small OpenAI-compatible HTTP server (stdlib http.server) serving a tiny local model.

It implements `/v1/chat/completions` (logprobs with per-token `bytes`) and `/v1/completions`
(tokens as strings, `bytes:\\xNN` for pieces of a character), greedy decoding by its own plain
loop (a full forward pass per step, independent of the client's code), and can misbehave on
chosen request numbers: drop the connection without answering, answer 429 with a Retry-After,
answer 503, stall (for a time, or until the test says so), or trickle a reply a byte at a
time; or answer a prompt with scripted replies
(token pieces and their logprobs, e.g. a JSON reply with its escapes cut anywhere, or malformed
JSON). Chat messages are formatted as the completion prompt the client would send
("<user message>\\n\\nAnswer:"), which stands in for a chat template the tiny model lacks.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable-character table, inverted (character of a byte -> byte)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


@dataclass
class Faults:
    """Request numbers (1-based, counting POSTs) on which the server misbehaves."""

    drop: set[int] = field(default_factory=set)
    rate_limit: dict[int, str] = field(default_factory=dict)  # request -> Retry-After value
    unavailable: set[int] = field(default_factory=set)
    stall: dict[int, float] = field(default_factory=dict)  # request -> seconds before answering
    trickle: dict[int, float] = field(default_factory=dict)  # request -> seconds between bytes
    hold: dict[int, threading.Event] = field(default_factory=dict)  # answer once the event is set
    omit_logprobs: bool = False  # answer like a server that does not support logprobs


class TinyModelServer:
    def __init__(self, model_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.model_lock = threading.Lock()
        self.bytes_of_char = byte_decoder()
        self.faults = Faults()
        # prompt substring -> replies served instead of the model's, one per request whose prompt
        # contains it, in order; a reply is its tokens as (raw bytes, logprob)
        self.scripted: dict[str, list[list[tuple[bytes, float]]]] = {}
        # (path, HTTP status or -1 for a dropped connection, arrival time) of every POST
        self.requests: list[tuple[str, int, float]] = []
        self.count_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> TinyModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def token_bytes(self, token_id: int) -> bytes:
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        return bytes(self.bytes_of_char[c] for c in piece)

    def greedy(self, prompt: str, max_tokens: int, stops: list[str]):
        """(token ids, logprobs, finish_reason, text) by a plain greedy loop."""
        torch = self.torch
        ids = list(self.tokenizer(prompt).input_ids)
        new_ids: list[int] = []
        logprobs: list[float] = []
        finish = "length"
        with self.model_lock, torch.no_grad():
            for _ in range(max_tokens):
                logits = self.model(torch.tensor([ids + new_ids])).logits[0, -1].float()
                step = logits.log_softmax(-1)
                token = int(step.argmax())
                if token == self.tokenizer.eos_token_id:
                    finish = "stop"
                    break
                new_ids.append(token)
                logprobs.append(float(step[token]))
                text = b"".join(map(self.token_bytes, new_ids)).decode("utf-8", "replace")
                if any(s in text for s in stops):
                    finish = "stop"
                    break
        text = b"".join(map(self.token_bytes, new_ids)).decode("utf-8", "replace")
        for s in stops:
            if s in text:
                text = text[: text.index(s)]
        return new_ids, logprobs, finish, text

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.count_lock:
                    number = len(server.requests) + 1
                    server.requests.append((self.path, 0, time.monotonic()))
                faults = server.faults
                if number in faults.drop:
                    self._record(number, -1)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if number in faults.rate_limit:
                    self._send(
                        number,
                        429,
                        {"error": {"message": "rate limited"}},
                        {"Retry-After": faults.rate_limit[number]},
                    )
                    return
                if number in faults.unavailable:
                    self._send(number, 503, {"error": {"message": "overloaded"}})
                    return
                if number in faults.trickle:
                    self._trickle(number, faults.trickle[number])
                    return
                time.sleep(faults.stall.get(number, 0.0))
                if number in faults.hold:
                    faults.hold[number].wait(timeout=120)
                if self.path == "/v1/chat/completions":
                    prompt = body["messages"][-1]["content"] + "\n\nAnswer:"
                elif self.path == "/v1/completions":
                    prompt = body["prompt"]
                else:
                    self._send(number, 404, {"error": {"message": f"no route {self.path}"}})
                    return
                script = next((k for k in server.scripted if k in prompt), None)
                if script is not None:
                    with server.count_lock:
                        reply = server.scripted[script].pop(0)
                    pieces, logprobs = [p for p, _ in reply], [lp for _, lp in reply]
                    finish, text = "stop", b"".join(pieces).decode("utf-8", "replace")
                else:
                    stops = body.get("stop") or []
                    ids, logprobs, finish, text = server.greedy(prompt, body["max_tokens"], stops)
                    pieces = [server.token_bytes(i) for i in ids]
                if self.path == "/v1/chat/completions":
                    entries = [
                        {
                            "token": p.decode("utf-8", "replace"),
                            "logprob": lp,
                            "bytes": list(p),
                            "top_logprobs": [],
                        }
                        for p, lp in zip(pieces, logprobs, strict=True)
                    ]
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": {"content": entries},
                        "finish_reason": finish,
                    }
                else:
                    choice = {
                        "index": 0,
                        "text": text,
                        "finish_reason": finish,
                        "logprobs": {
                            "tokens": [_legacy_token(p) for p in pieces],
                            "token_logprobs": logprobs,
                            "top_logprobs": None,
                        },
                    }
                if faults.omit_logprobs:
                    del choice["logprobs"]
                self._send(
                    number,
                    200,
                    {"id": f"cmpl-{number}", "model": body["model"], "choices": [choice]},
                )

            def _record(self, number: int, status: int) -> None:
                with server.count_lock:
                    path, _, arrived = server.requests[number - 1]
                    server.requests[number - 1] = (path, status, arrived)

            def _trickle(self, number: int, interval: float) -> None:
                """A 200 whose body comes one byte per `interval` seconds, until the client
                hangs up: every socket read succeeds, the response never completes."""
                self._record(number, 200)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(interval)
                except OSError:
                    self.close_connection = True

            def _send(
                self, number: int, status: int, payload: dict, headers: dict[str, str] | None = None
            ) -> None:
                self._record(number, status)
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _legacy_token(piece: bytes) -> str:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in piece)
