"""`hf-rbridge`: lm-eval's `HFLM`, plus answers to `rbridge_document` requests.

Everything else (`loglikelihood`, generation, batching flags, data parallelism under
`accelerate launch`) is the stock backend unchanged.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils_hf import pad_and_concat
from tqdm import tqdm

from rbridge_tasks.document_mode import (
    TOP_K,
    DocumentResponse,
    EncodedDocument,
    encode_documents,
    request_names,
)
from rbridge_tasks.proxy_tokenizer import ProxyTokenizer

STAT_CHUNK = 64
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def _map_large_buffers_outside_the_heap() -> None:
    """Serve allocations of 8 MB or more with their own mappings (glibc only).

    glibc raises its mmap threshold to the size of the largest freed block (up to 32 MB), so the
    per-batch logits and vocabulary-wide temporaries end up on the heap, interleaved with the
    small arrays each response keeps; the heap then cannot shrink. Measured on the 10,162-document
    group: peak RSS grew by about 1 MB per document (12.8 GB before the run ended) without this,
    and stays flat with it. The statistics' temporaries (`STAT_CHUNK` positions x vocabulary)
    stay below the threshold, so the heap reuses them instead of mapping each one afresh.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 8 * 2**20)


@register_model("hf-rbridge")
class HFRBridgeLM(HFLM):
    """`logits_budget_mb` (a model arg) caps the logits of one forward pass: a batch of long
    documents is split so that rows x padded length x vocabulary x 4 bytes stays under it, since
    a trace's logits, not the model, dominate memory for small proxies with large vocabularies.
    The default is 256 MB on CPU (larger batches only fragment the heap: measured peak RSS on
    600 long MMLU-Pro traces 1.5 GB at 256 MB, 3.2 GB at 1024 MB) and 4096 MB on accelerators.
    """

    def __init__(self, *args, logits_budget_mb: int | str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _map_large_buffers_outside_the_heap()
        if logits_budget_mb is None:
            logits_budget_mb = 256 if self.device.type == "cpu" else 4096
        self.logits_budget = int(logits_budget_mb) * 2**20

    def rbridge_document(self, requests, disable_tqdm: bool = False) -> list[DocumentResponse]:
        encoded = encode_documents(
            ProxyTokenizer(self.tokenizer, self.add_bos_token, self.prefix_token_id),
            [request.args for request in requests],
            window=self.max_length + 1,
            prefix_token_id=self.prefix_token_id,
            names=request_names(requests),
            max_length=self.max_length,
        )
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))  # as lm-eval
        batch_size = self.batch_size
        if batch_size == "auto":  # every rank probes (a collective under accelerate launch)
            longest = encoded[order[0]].ids if order else [self.prefix_token_id] * 2
            batch_size = self._detect_batch_size([(None, longest, [])])
        batch_size = max(int(batch_size), 1)
        results: list[DocumentResponse | None] = [None] * len(encoded)
        with tqdm(
            total=len(encoded), disable=disable_tqdm or self.rank != 0, desc="rbridge documents"
        ) as bar:
            for batch in self._batches(order, encoded, batch_size):
                for i, response in zip(
                    batch, self._score([encoded[i] for i in batch]), strict=True
                ):
                    results[i] = response
                bar.update(len(batch))
        return results  # type: ignore[return-value]

    def _batches(
        self, order: list[int], encoded: list[EncodedDocument], batch_size: int
    ) -> list[list[int]]:
        """Longest first, at most `batch_size` rows and, past one row, the logits budget."""
        vocab = getattr(self.model.config, "vocab_size", None) or len(self.tokenizer)
        batches: list[list[int]] = []
        for i in order:
            if batches:
                batch = batches[-1]
                longest = len(encoded[batch[0]].ids)
                if len(batch) < batch_size and (len(batch) + 1) * longest * vocab * 4 <= (
                    self.logits_budget
                ):
                    batch.append(i)
                    continue
            batches.append([i])
        return batches

    @torch.no_grad()
    def _score(self, batch: list[EncodedDocument]) -> list[DocumentResponse]:
        inputs = [torch.tensor(d.ids[:-1], dtype=torch.long, device=self.device) for d in batch]
        padded = pad_and_concat(max(len(x) for x in inputs), inputs, padding_side="right")
        logits = self._model_call(padded)
        out = []
        for doc, row in zip(batch, logits, strict=True):
            z = row[doc.first_scored - 1 : len(doc.ids) - 1]
            targets = torch.tensor(doc.ids[doc.first_scored :], dtype=torch.long, device=z.device)
            chunks = [
                self._statistics(z[c : c + STAT_CHUNK], targets[c : c + STAT_CHUNK])
                for c in range(0, len(targets), STAT_CHUNK)
            ]
            own, rank, top, entropy = (torch.cat(part) for part in zip(*chunks, strict=True))
            out.append(
                DocumentResponse(
                    token_ids=np.asarray(doc.ids[doc.first_scored :], dtype=np.int32),
                    offsets=np.asarray(doc.offsets, dtype=np.int32).reshape(-1, 2),
                    logprobs=own.double().cpu().numpy(),
                    is_argmax=(rank == 1).cpu().numpy(),
                    entropy=entropy.float().cpu().numpy(),
                    rank=rank.int().cpu().numpy(),
                    top_logprobs=top.float().cpu().numpy(),
                    vocab_size=int(row.shape[-1]),
                    context_tokens=doc.first_scored,
                    truncated_tokens=doc.truncated_tokens,
                )
            )
        return out

    def _statistics(self, z: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(logprob, rank, top-k logprobs, entropy) per position, from logits `z`.

        The cheapest passes over the vocabulary found on CPU: log-softmax once, softmax for the
        entropy, a float count for the rank (a bool sum is twice as slow). Positions come in
        chunks of `STAT_CHUNK`, so the temporaries stay small for long traces.
        """
        logprobs = torch.log_softmax(z.to(self.softmax_dtype or torch.float32), dim=-1)
        own = logprobs.gather(-1, targets[:, None])
        rank = (logprobs > own).float().sum(-1).long() + 1
        top = logprobs.topk(min(TOP_K, z.shape[-1]), dim=-1).values
        entropy = -torch.linalg.vecdot(torch.softmax(logprobs, dim=-1), logprobs)
        return own[:, 0], rank, top, entropy
