"""`hf-rbridge`: lm-eval's `HFLM`, plus answers to `rbridge_document` requests.

Everything else (`loglikelihood`, generation, batching flags, data parallelism under
`accelerate launch`) is the stock backend unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils_hf import pad_and_concat
from tqdm import tqdm

from rbridge_tasks.backends.response import (
    TOP_K,
    DocumentResponse,
    EncodedDocument,
    encode_documents,
    request_names,
    with_response_cache,
)
from rbridge_tasks.backends.tokenizer import ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError


class StatisticsWorkspace:
    """Two vocabulary-wide buffers of `rows` positions, allocated once and reused by every chunk.

    Fresh vocabulary-wide temporaries for every chunk of every document fragment glibc's heaps
    once torch computes on several threads: measured with 8 threads, 1,000 long documents left
    RSS 2.4 GB above the start and still climbing (2.5 MB per document), all of it freed memory
    that `malloc_trim` could return. With these buffers the statistics allocate nothing
    vocabulary-wide after the first chunk, whatever the number of threads or documents.
    """

    def __init__(self, rows: int, vocab: int, dtype: torch.dtype, device: torch.device) -> None:
        self.logprobs = torch.empty((rows, vocab), dtype=dtype, device=device)
        self.scratch = torch.empty_like(self.logprobs)

    @property
    def rows(self) -> int:
        """Positions one call can take; longer documents are fed in chunks of this many."""
        return self.logprobs.shape[0]

    def statistics(self, z: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(logprob, rank, top-k logprobs, entropy) of each target, from its logits row in `z`.

        rank counts the vocabulary entries whose logprob is at least the target's, the target
        included (vLLM's definition, so both backends agree on ties). The comparison writes
        floats, whose sum is about twice as fast as a boolean count on CPU.
        """
        n = len(targets)
        logprobs, scratch = self.logprobs[:n], self.scratch[:n]
        torch.log_softmax(z, dim=-1, dtype=logprobs.dtype, out=logprobs)
        own = logprobs.gather(-1, targets[:, None])
        rank = torch.ge(logprobs, own, out=scratch).sum(-1)
        top = logprobs.topk(min(TOP_K, logprobs.shape[-1]), dim=-1).values
        entropy = torch.exp(logprobs, out=scratch).mul_(logprobs).sum(-1).neg_()
        return own[:, 0], rank, top, entropy


def positive_megabytes(value: object, name: str) -> int:
    """A model arg in whole megabytes: a typo or a non-positive budget is one clear line."""
    if isinstance(value, float) and value.is_integer():  # lm-eval reads "-1" as -1.0
        value = int(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0 or isinstance(value, bool):
        raise RBridgeError(
            f"--model_args {name}={value}: expected a positive whole number of megabytes"
        )
    return number


@register_model("hf-rbridge")
class HFRBridgeLM(HFLM):
    """lm-eval's `hf` model that also answers `rbridge_document`, one forward pass a document.

    `logits_budget_mb` (a model arg) caps the logits of one forward pass: a batch of long
    documents is split so that rows x padded length x vocabulary x 4 bytes stays under it, since
    a trace's logits, not the model, dominate memory for small proxies with large vocabularies.
    The default is 256 MB on CPU (larger batches only fragment the heap: measured peak RSS on
    600 long MMLU-Pro traces 1.5 GB at 256 MB, 3.2 GB at 1024 MB) and 4096 MB on accelerators.
    The statistics run over `statistics_rows` positions at a time (64 on CPU, where small
    buffers stay in cache; 1024 on accelerators).
    """

    def __init__(self, *args, logits_budget_mb: int | str | None = None, **kwargs) -> None:
        budget = None  # checked before the model loads
        if logits_budget_mb is not None:
            budget = positive_megabytes(logits_budget_mb, "logits_budget_mb")
        super().__init__(*args, **kwargs)
        on_cpu = self.device.type == "cpu"
        self.logits_budget = (budget or (256 if on_cpu else 4096)) * 2**20
        self.statistics_rows = 64 if on_cpu else 1024
        self._workspace: StatisticsWorkspace | None = None

    def rbridge_document(self, requests, disable_tqdm: bool = False) -> list[DocumentResponse]:
        """Answer each `(context, trace)` request with every statistic of `DocumentResponse`.

        Called by lm-eval for requests of that type, like `loglikelihood`; answers come from
        the `--use_cache` database where it has them. A context longer than the window is
        truncated from the left; a trace that alone does not fit raises `RBridgeError`.
        """
        return with_response_cache(self, requests, lambda todo: self._answer(todo, disable_tqdm))

    def _answer(self, requests, disable_tqdm: bool) -> list[DocumentResponse]:
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
            longest = encoded[order[0]].ids.tolist() if order else [self.prefix_token_id] * 2
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

    def _workspace_for(self, logits: torch.Tensor) -> StatisticsWorkspace:
        dtype = self.softmax_dtype or torch.float32
        workspace = self._workspace
        if workspace is None or workspace.logprobs.shape[-1] != logits.shape[-1] or (
            workspace.logprobs.dtype != dtype or workspace.logprobs.device != logits.device
        ):  # fmt: skip
            workspace = StatisticsWorkspace(
                self.statistics_rows, logits.shape[-1], dtype, logits.device
            )
            self._workspace = workspace
        return workspace

    @torch.no_grad()
    def _score(self, batch: list[EncodedDocument]) -> list[DocumentResponse]:
        inputs = [torch.from_numpy(d.ids[:-1]).to(self.device) for d in batch]
        padded = pad_and_concat(max(len(x) for x in inputs), inputs, padding_side="right")
        logits = self._model_call(padded)
        workspace = self._workspace_for(logits)
        rows = workspace.rows
        out = []
        for doc, row in zip(batch, logits, strict=True):
            z = row[doc.first_scored - 1 : len(doc.ids) - 1]
            targets = torch.from_numpy(doc.ids[doc.first_scored :]).to(z.device)
            chunks = [
                workspace.statistics(z[c : c + rows], targets[c : c + rows])
                for c in range(0, len(targets), rows)
            ]
            own, rank, top, entropy = (torch.cat(part) for part in zip(*chunks, strict=True))
            out.append(
                DocumentResponse(
                    token_ids=doc.ids[doc.first_scored :].astype(np.int32),
                    spans=doc.spans,
                    logprobs=own.double().cpu().numpy(),
                    entropy=entropy.float().cpu().numpy(),
                    rank=rank.int().cpu().numpy(),
                    top_logprobs=top.float().cpu().numpy(),
                    vocab_size=int(row.shape[-1]),
                    context_tokens=doc.first_scored,
                    truncated_tokens=doc.truncated_tokens,
                )
            )
        return out
