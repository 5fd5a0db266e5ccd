"""`hf-rbridge`: lm-eval's `HFLM`, answering request chains from one forward pass each."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import _add_special_kwargs, has_bos_prefix
from lm_eval.models.utils_hf import pad_and_concat
from tqdm import tqdm

from rbridge_tasks.chains import Chain, batches, find_chains
from rbridge_tasks.encoding_cache import BatchEncodingMixin


@register_model("hf-rbridge")
class HFRBridgeLM(BatchEncodingMixin, HFLM):
    """Same results as `hf` for every request; chains cost one pass over their longest text."""

    def _encode_many(self, strings: list[str]) -> list[list[int]]:
        """`HFLM.tok_encode` of each string, in one tokenizer call per special-token setting."""
        if not getattr(self.tokenizer, "is_fast", False):
            return [HFLM.tok_encode(self, s) for s in strings]
        bos = self.tokenizer.decode(self.prefix_token_id)
        groups: dict[bool, list[int]] = {}
        for i, s in enumerate(strings):
            groups.setdefault(has_bos_prefix(s, bos), []).append(i)
        out: list[list[int]] = [[] for _ in strings]
        for bos_prefixed, indices in groups.items():
            kwargs = _add_special_kwargs(None, self.add_bos_token)
            if bos_prefixed:
                kwargs["add_special_tokens"] = False
            batch = self.tokenizer(
                [strings[i] for i in indices], return_attention_mask=False, **kwargs
            )["input_ids"]
            for i, ids in zip(indices, batch, strict=True):
                out[i] = ids
        return out

    def _loglikelihood_tokens(
        self, requests, disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        if self.backend != "causal":
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        chains, leftover = find_chains(
            [(ctx, cont) for _, ctx, cont in requests], max_tokens=self.max_length + 1
        )
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        if leftover:
            stock = super()._loglikelihood_tokens(
                [requests[i] for i in leftover], disable_tqdm, override_bs
            )
            for i, answer in zip(leftover, stock, strict=True):
                results[i] = answer
        batch_size = override_bs or self.batch_size
        if batch_size == "auto":  # probe with the longest text, as lm-eval does
            longest = max((c.tokens for c in chains), key=len, default=())
            batch_size = self._detect_batch_size([(None, list(longest), [])]) if longest else 1
        pbar = tqdm(
            total=sum(len(c.members) for c in chains),
            disable=disable_tqdm or self.rank,
            desc="Running loglikelihood chains",
        )
        for batch in batches(chains, int(batch_size)):
            for chain, (logprobs, greedy) in zip(batch, self._score_positions(batch), strict=True):
                answers = chain.answers(logprobs, greedy, total=lambda values: values.sum())
                for member, answer in zip(chain.members, answers, strict=True):
                    results[member.request] = answer
                    cache_key = requests[member.request][0]
                    if cache_key is not None:
                        self.cache_hook.add_partial("loglikelihood", cache_key, answer)
                pbar.update(len(chain.members))
        pbar.close()
        return results  # type: ignore[return-value]

    def _score_positions(self, batch: list[Chain]) -> list[tuple[torch.Tensor, np.ndarray]]:
        """Per position of each chain: log-probability of the next token (in the softmax dtype,
        as the stock code sums it), and whether it was the argmax."""
        inputs = [torch.tensor(c.tokens[:-1], dtype=torch.long, device=self.device) for c in batch]
        padded = pad_and_concat(max(len(x) for x in inputs), inputs, padding_side="right")
        logprobs = F.log_softmax(self._model_call(padded), dim=-1, dtype=self.softmax_dtype)
        out = []
        for chain, row in zip(batch, logprobs, strict=True):
            n = len(chain.tokens) - 1
            targets = torch.tensor(chain.tokens[1:], dtype=torch.long, device=row.device)
            picked = row[:n].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            greedy = row[:n].argmax(dim=-1) == targets
            out.append((picked.cpu(), greedy.cpu().numpy()))
        return out
