"""The study's models: one tokenizer for all, GPT-2-style models trained from scratch on CPU.

Every model reads a recipe's token stream from its start (documents joined by EOS, cut into
blocks), one block per row and each block once: a proxy reads the first part of the stream its
target reads in full. Training is seeded and single-threaded by default, so a model is the same
bytes on every run on the same machine (float sums depend on the thread count).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class ModelSize:
    n_layer: int
    n_embd: int
    n_head: int
    steps: int
    batch: int = 16
    block: int = 256
    lr: float = 3e-3

    @property
    def tokens(self) -> int:
        return self.steps * self.batch * self.block


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS
    )


def token_stream(documents: Iterator[tuple[str, str]], tokenizer, n_tokens: int):
    """The first `n_tokens` of the documents joined by EOS, and the token count per kind."""
    import numpy as np

    ids: list[int] = []
    kinds: dict[str, int] = {}
    eos = tokenizer.eos_token_id
    while len(ids) < n_tokens:
        chunk = list(itertools.islice(documents, 256))
        encoded = tokenizer([text for _, text in chunk])["input_ids"]
        for (kind, _), doc in zip(chunk, encoded, strict=True):
            ids.extend(doc)
            ids.append(eos)
            kinds[kind] = kinds.get(kind, 0) + len(doc) + 1
    return np.asarray(ids[:n_tokens], dtype=np.int64), kinds


def train_model(
    size: ModelSize,
    tokenizer,
    stream,
    out: Path,
    *,
    seed: int,
    threads: int,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Train on `stream` (size.tokens ids) and save the model and tokenizer to `out` atomically
    (a folder beside it renamed into place); returns the training record also saved there."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    started = time.monotonic()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=512,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    blocks = torch.from_numpy(stream[: size.tokens]).view(size.steps, size.batch, size.block)
    optimiser = torch.optim.AdamW(model.parameters(), lr=size.lr, weight_decay=0.01)
    warmup = max(1, size.steps // 20)

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay to a tenth
        if step < warmup:
            return (step + 1) / warmup
        done = (step - warmup) / max(1, size.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.train()
    loss_value = float("nan")
    try:
        for step in range(size.steps):
            rows = blocks[step]
            # EOS separates documents and is also the pad token: every position is attended to
            loss = model(input_ids=rows, attention_mask=torch.ones_like(rows), labels=rows).loss
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            loss_value = loss.item()
            if progress is not None:
                progress(step + 1, loss_value)
    finally:
        torch.set_num_threads(saved_threads)
    model.eval()
    record = {
        **asdict(size),
        "tokens": size.tokens,
        "parameters": sum(p.numel() for p in model.parameters()),
        "non_embedding_parameters": sum(
            p.numel() for n, p in model.named_parameters() if ".wte." not in n and ".wpe." not in n
        ),
        "final_loss": loss_value,
        "seed": seed,
        "threads": threads,
        "wall_s": time.monotonic() - started,
    }
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return record
