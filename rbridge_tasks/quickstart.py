"""`rbridge quickstart DIR`: the whole rBridge loop offline, on CPU, in a few minutes.

It is a demonstration of the commands, not of the method: the proxies are tiny models trained
here for a few hundred steps, the "frontier" confidences come from one of them, and the
large-model accuracies are an illustrative table written by this script. Everything else is the
real path, run through the same commands a user types (each is printed as it runs):

1. a data folder laid out like `shared/data/` with GSM8K test rows 0-23 (shipped, see
   `quickstart_data/PROVENANCE.md`);
2. a byte-level BPE tokenizer trained on the shipped GSM8K text, and proxies of different
   sizes and training steps trained on GSM8K train rows 0-199, so they differ honestly;
3. `rbridge traces import` of 24 shipped GPT-4o-mini traces, `rbridge traces confidences` from
   the largest proxy, `rbridge traces validate`;
4. `rbridge eval --model hf-rbridge` on every proxy, `rbridge predict import-table` of the
   illustrative table and `rbridge predict fit`, which writes `fit/fit.md` (the table) and
   `fit/fit.png` (the plot).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from rbridge_tasks.core.errors import RBridgeError

SHIPPED = "quickstart_data"
TEST_ROWS = "gsm8k_test_0-23.jsonl"
TRAIN_ROWS = "gsm8k_train_0-199.jsonl"
TRACES = "gpt4o_mini_gsm8k_test_0-23.jsonl"
EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Proxy:
    name: str
    n_embd: int
    n_layer: int
    steps: int
    accuracy: float  # the illustrative "large-model accuracy" of this recipe


# Bigger and longer-trained recipes get higher made-up accuracies, as a real ladder would.
PROXIES = (
    Proxy("qs-a", 32, 1, 100, 0.12),
    Proxy("qs-b", 48, 1, 200, 0.21),
    Proxy("qs-c", 64, 2, 300, 0.33),
    Proxy("qs-d", 96, 2, 400, 0.41),
)
TINY_STEPS = (4, 8, 12, 16)  # --tiny: the same loop in seconds, for CI


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rbridge quickstart",
        description="Run the whole loop offline on tiny models (a demo, no substitute for "
        "real proxies, frontier traces or large-model accuracies).",
    )
    parser.add_argument("dir", help="new or empty folder for everything the loop writes")
    parser.add_argument("--tiny", action="store_true", help="a few training steps only (CI)")
    args = parser.parse_args(argv)
    run_quickstart(Path(args.dir), tiny=args.tiny)
    return 0


def run_quickstart(root: Path, *, tiny: bool = False) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every input is local
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if root.exists() and any(root.iterdir()):
        raise RBridgeError(f"{root}: the quick start needs a new or empty folder")
    started = time.monotonic()
    data = root / "data"
    (data / "gsm8k").mkdir(parents=True)
    shipped = resources.files("rbridge_tasks") / SHIPPED
    (data / "gsm8k" / "test.jsonl").write_bytes((shipped / TEST_ROWS).read_bytes())
    texts = _texts(shipped)

    _say("training a tokenizer on the shipped GSM8K text")
    tokenizer = _train_tokenizer(texts)
    steps = TINY_STEPS if tiny else tuple(p.steps for p in PROXIES)
    proxies = [replace(p, steps=n) for p, n in zip(PROXIES, steps, strict=True)]
    models = root / "models"
    for proxy in proxies:
        _say(
            f"training proxy {proxy.name}: {proxy.n_layer} layer(s) of width {proxy.n_embd}, "
            f"{proxy.steps} steps"
        )
        _train_proxy(proxy, tokenizer, texts, models / proxy.name)

    traces = root / "traces"
    shipped_traces = root / "shipped" / TRACES
    shipped_traces.parent.mkdir()
    shipped_traces.write_bytes((shipped / TRACES).read_bytes())
    confidence_model = models / proxies[-1].name
    _rbridge(
        "traces",
        "import",
        "--format",
        "rereading",
        str(shipped_traces),
        "--author-model",
        "gpt-4o-mini-2024-07-18",
        "--data-dir",
        str(data),
        "--out",
        str(traces / "gsm8k-text.jsonl"),
    )
    _rbridge(
        "traces",
        "confidences",
        str(traces / "gsm8k-text.jsonl"),
        str(traces / "gsm8k.jsonl"),
        "--model",
        str(confidence_model),
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        "--no-progress",
    )
    _rbridge("traces", "validate", str(traces / "gsm8k.jsonl"), "--data-dir", str(data))

    for proxy in proxies:
        _rbridge(
            "eval",
            "--model",
            "hf-rbridge",
            "--model_args",
            f"pretrained={models / proxy.name}",
            "--device",
            "cpu",
            "--tasks",
            "rbridge_gsm8k",
            "--batch_size",
            "8",
            "--metadata",
            f"traces={traces / 'gsm8k.jsonl'}",
            f"data_dir={data}",
            f"recipe={proxy.name}",
            "--output_path",
            str(root / "proxies" / proxy.name),
        )

    table = root / "illustrative_accuracies.csv"
    table.write_text(  # made-up numbers, named so in every column that reaches a report
        "model,recipe,illustrative_accuracy\n"
        + "".join(f"illustrative-large-{p.name},{p.name},{p.accuracy}\n" for p in proxies),
        encoding="utf-8",
    )
    _rbridge(
        "predict",
        "import-table",
        str(table),
        "--model-column",
        "model",
        "--metric",
        "illustrative_accuracy=gsm8k:exact_match",
        "--meta",
        "recipe=recipe",
        "--out-dir",
        str(root / "targets"),
    )
    _rbridge(
        "predict",
        "fit",
        "--results",
        str(root / "proxies"),
        str(root / "targets"),
        "--proxy-task",
        "rbridge_gsm8k",
        "--proxy-metric",
        "rbridge_nll",
        "--target-task",
        "gsm8k",
        "--target-metric",
        "exact_match",
        "--join-on",
        "recipe",
        "--n-boot",
        "200",
        "--quiet",
        "--out-dir",
        str(root / "fit"),
    )
    _say(
        f"done in {time.monotonic() - started:.0f} s: {root / 'fit' / 'fit.md'} (the table), "
        f"{root / 'fit' / 'fit.png'} (the plot). The accuracies were illustrative and the "
        "models tiny: this shows the commands, not how well rBridge predicts."
    )
    return root / "fit"


def _texts(shipped) -> list[str]:
    texts = []
    for name in (TRAIN_ROWS, TEST_ROWS):
        for line in (shipped / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.append(f"Question: {row['question']}\nAnswer: {row['answer']}")
    for line in (shipped / TRACES).read_text(encoding="utf-8").splitlines():
        texts.append(json.loads(line)["cot"]["generation"][0])
    return texts


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = BpeTrainer(
        vocab_size=1024,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS
    )


def _train_proxy(proxy: Proxy, tokenizer, texts: list[str], out: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,
        n_embd=proxy.n_embd,
        n_layer=proxy.n_layer,
        n_head=4,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    ids = [i for text in texts for i in [*tokenizer(text)["input_ids"], tokenizer.eos_token_id]]
    block, batch = 128, 8
    stream = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    # Matrices this small gain little from a second thread, and on a machine busy with other
    # work OpenMP's waiting threads made each step several times slower (measured: 0.23 s
    # against 1.5 s per step at a load of 7 on 2 cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        for _ in range(proxy.steps):
            rows = stream[torch.randint(len(stream), (batch,), generator=generator)]
            loss = model(input_ids=rows, labels=rows).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _rbridge(*argv: str) -> None:
    """Run one `rbridge` command in this process, as the user would type it."""
    from rbridge_tasks.commands import SUBCOMMANDS, guarded

    _say("$ rbridge " + shlex.join(argv))
    code = guarded(argv[0], SUBCOMMANDS[argv[0]], list(argv[1:]))
    if code != 0:  # the command has said why, in one line, under the command it prints
        raise SystemExit(code)


def _say(message: str) -> None:
    print(f"[quickstart] {message}", file=sys.stderr, flush=True)
