"""`rbridge study DIR`: a ladder study in miniature, measured end to end on CPU.

Per data recipe (`recipes.RECIPES`) a tiny proxy and a larger, longer-trained target are trained
from scratch on the recipe's token stream; a larger frontier model trained on the cleanest recipe
writes the reasoning traces for the held-out test questions (`rbridge traces generate --backend
hf`, per-token logprobs, incorrect traces kept). Every target's accuracy is measured by lm-eval
(`study_arith`, a generate-until task written into `tasks/`, exact match of the final answer);
every proxy is scored once (`rbridge eval --model hf-rbridge` on `rbridge_gsm8k`,
`rbridge_baselines_gsm8k` and `study_arith`); `rbridge predict compare` and `rank` read the
results files. No number is passed between stages other than through those files.

Each stage skips what a previous run finished (a model folder, a results folder, a trace file,
a report folder are each moved into place only when complete), so an interrupted study resumes.
`study.json` records the seed, the size, each model's parameters, tokens and training time, and
the wall time of every stage.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rbridge_tasks.core.atomic import atomic_write
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.study.problems import held_out_problems
from rbridge_tasks.study.recipes import RECIPES, TOKENIZER_MIX, Recipe, documents
from rbridge_tasks.study.training import ModelSize, token_stream, train_model, train_tokenizer

TASK = "study_arith"
FILTER = "strict-match"
# The target task: the proxy's own prompt format, greedy, the answer line read by a regex.
TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {test_file}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer.split('#### ')[-1]}}}}"
generation_kwargs:
  until: ["\\nQuestion:", "<|endoftext|>"]
  do_sample: false
  max_gen_toks: {max_new_tokens}
filter_list:
  - name: {filter}
    filter:
      - function: regex
        regex_pattern: "The answer is (-?[0-9]+)\\\\."
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@dataclass(frozen=True)
class StudySize:
    recipes: tuple[str, ...]
    test_questions: int
    vocab: int
    tokenizer_docs: int
    proxy: ModelSize
    target: ModelSize
    frontier: ModelSize
    max_new_tokens: int
    n_boot: int


SIZES = {
    # CI: the plumbing only, in seconds (three recipes: `compare` needs three points)
    "tiny": StudySize(
        recipes=("sol60", "sol20-noisy30", "sol8"),
        test_questions=8,
        vocab=400,
        tokenizer_docs=300,
        proxy=ModelSize(n_layer=1, n_embd=32, n_head=2, steps=3, batch=4, block=64),
        target=ModelSize(n_layer=1, n_embd=48, n_head=2, steps=6, batch=4, block=64),
        frontier=ModelSize(n_layer=1, n_embd=64, n_head=2, steps=8, batch=4, block=64),
        max_new_tokens=24,
        n_boot=50,
    ),
    # the quick start: a few minutes
    "small": StudySize(
        recipes=("sol60", "sol30-noisy10", "sol20-drill", "answers40", "sol8"),
        test_questions=40,
        vocab=1000,
        tokenizer_docs=3000,
        proxy=ModelSize(n_layer=1, n_embd=32, n_head=2, steps=30, batch=8, block=128),
        target=ModelSize(n_layer=2, n_embd=64, n_head=4, steps=300, batch=8, block=128),
        frontier=ModelSize(n_layer=2, n_embd=96, n_head=4, steps=400, batch=8, block=128),
        max_new_tokens=80,
        n_boot=200,
    ),
    # 46 min measured on 2 shared cores (README, "Ladder study"); targets reach 5-11%
    "default": StudySize(
        recipes=(
            "sol60",
            "sol40",
            "sol30-noisy10",
            "sol20-drill",
            "sol20-answers30",
            "sol20-noisy30",
            "answers40",
            "sol8",
        ),
        test_questions=150,
        vocab=1000,
        tokenizer_docs=5000,
        proxy=ModelSize(n_layer=1, n_embd=32, n_head=2, steps=60, batch=8, block=128),
        target=ModelSize(n_layer=2, n_embd=128, n_head=4, steps=400, batch=16, block=128),
        frontier=ModelSize(n_layer=3, n_embd=128, n_head=4, steps=600, batch=16, block=128),
        max_new_tokens=80,
        n_boot=1000,
    ),
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rbridge study",
        description="Train a ladder of proxies, targets and a frontier on synthetic data "
        "recipes, measure the targets with lm-eval and compare every proxy metric (CPU). "
        "Resumes in an existing DIR.",
    )
    parser.add_argument("dir", help="folder for everything the study writes (resumed if present)")
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--seed", type=int, default=0, help="data, test questions and weights")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for training (1: reproducible)"
    )
    args = parser.parse_args(argv)
    run_study(Path(args.dir), size=args.size, seed=args.seed, threads=args.threads)
    return 0


class Study:
    def __init__(self, root: Path, size: str, seed: int, threads: int) -> None:
        self.root, self.size_name, self.seed, self.threads = root, size, seed, threads
        self.size = SIZES[size]
        self.record_path = root / "study.json"
        settings = {"size": size, "seed": seed, "config": asdict(self.size)}
        if self.record_path.exists():
            self.record = json.loads(self.record_path.read_text(encoding="utf-8"))
            if self.record["settings"] != json.loads(json.dumps(settings)):
                raise RBridgeError(
                    f"{self.record_path}: written by a study with other settings "
                    f"({self.record['settings']['size']}, seed {self.record['settings']['seed']}); "
                    "use a new folder"
                )
        else:
            self.record = {"settings": settings, "models": {}, "stages": {}}
        self.started = time.monotonic()

    def save(self) -> None:
        atomic_write(
            self.record_path,
            lambda p: p.write_text(json.dumps(self.record, indent=2) + "\n", encoding="utf-8"),
        )

    def stage(self, name: str, work) -> None:
        """Run `work()` and add its wall time to the stage's (a resumed stage adds up)."""
        say(f"stage {name} (study at {time.monotonic() - self.started:.0f} s)")
        started = time.monotonic()
        work()
        stages = self.record["stages"]
        stages[name] = stages.get(name, 0.0) + time.monotonic() - started
        self.save()

    @property
    def recipes(self) -> list[Recipe]:
        return [r for r in RECIPES if r.name in self.size.recipes]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def tests(self) -> list:
        return held_out_problems(self.seed, self.size.test_questions)

    # -- stages -----------------------------------------------------------------------------

    def write_benchmark(self) -> None:
        test_file = self.data / "gsm8k" / "test.jsonl"
        rows = "".join(
            json.dumps({"question": p.question, "answer": p.reference()}) + "\n" for p in self.tests
        )
        atomic_write(test_file, lambda p: p.write_text(rows, encoding="utf-8"))
        task = TASK_YAML.format(
            task=TASK,
            test_file=json.dumps(str(test_file.resolve())),
            max_new_tokens=self.size.max_new_tokens,
            filter=FILTER,
        )
        atomic_write(
            self.root / "tasks" / f"{TASK}.yaml", lambda p: p.write_text(task, encoding="utf-8")
        )

    def tokenizer(self):
        from transformers import PreTrainedTokenizerFast

        folder = self.root / "tokenizer"
        if not folder.exists():
            held_out = frozenset(p.question for p in self.tests)
            stream = documents(TOKENIZER_MIX, self.seed, held_out, len)
            texts = [text for _, text in (next(stream) for _ in range(self.size.tokenizer_docs))]
            tokenizer = train_tokenizer(texts, self.size.vocab)
            tmp = folder.with_name(".tokenizer.partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tokenizer.save_pretrained(tmp)
            tmp.rename(folder)
        return PreTrainedTokenizerFast.from_pretrained(folder)

    def train(self, recipe: Recipe, roles: dict[str, ModelSize], tokenizer) -> None:
        """Train the models of `roles` (name -> size) that are missing, on `recipe`'s stream."""
        models = self.root / "models"
        todo = {name: size for name, size in roles.items() if not (models / name).exists()}
        if not todo:
            return
        held_out = frozenset(p.question for p in self.tests)
        n_tokens = max(size.tokens for size in todo.values())
        stream, kinds = token_stream(
            documents(recipe, self.seed, held_out, lambda t: len(tokenizer(t)["input_ids"])),
            tokenizer,
            n_tokens,
        )
        for name, size in todo.items():
            say(
                f"training {name}: {size.n_layer} layer(s) of width {size.n_embd}, "
                f"{size.steps} steps of {size.batch}x{size.block} tokens"
            )
            every = max(1, size.steps // 4)

            def progress(step: int, loss: float, name: str = name, every: int = every) -> None:
                if step % every == 0:
                    say(f"  {name} step {step}: loss {loss:.3f}")

            record = train_model(
                size,
                tokenizer,
                stream,
                models / name,
                seed=self.seed,
                threads=self.threads,
                progress=progress,
            )
            share = sum(kinds.values())
            record.update(
                recipe=recipe.name,
                mixture=recipe.describe(),
                stream_share={k: round(v / share, 4) for k, v in sorted(kinds.items())},
            )
            self.record["models"][name] = record
            self.save()

    def frontier_traces(self) -> None:
        out = self.root / "traces" / "gsm8k.jsonl"
        if out.exists():
            return
        partial = out.with_name(".gsm8k.partial.jsonl")  # `traces generate` resumes it
        rbridge(
            "traces",
            "generate",
            "--benchmark",
            "gsm8k",
            "--backend",
            "hf",
            "--model",
            str(self.root / "models" / "frontier"),
            "--model-name",
            f"study-frontier-{self.seed}",
            "--data-dir",
            str(self.data),
            "--out",
            str(partial),
            "--max-new-tokens",
            str(self.size.max_new_tokens),
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--no-progress",
        )
        rbridge("traces", "validate", str(partial), "--data-dir", str(self.data))
        partial.rename(out)

    def evaluate(self, name: str, recipe: str, role: str) -> None:
        """One lm-eval run of model `name`, its results moved into `results/<name>` when done."""
        out = self.root / "results" / name
        if out.exists():
            return
        partial = out.with_name(f".{name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        if role == "proxy":
            model = "hf-rbridge"
            tasks = f"rbridge_gsm8k,rbridge_baselines_gsm8k,{TASK}"
            extra = [f"traces={self.root / 'traces' / 'gsm8k.jsonl'}", f"data_dir={self.data}"]
        else:
            model, tasks, extra = "hf", TASK, []
        rbridge(
            "eval",
            "--model",
            model,
            "--model_args",
            f"pretrained={self.root / 'models' / name},dtype=float32",
            "--device",
            "cpu",
            "--tasks",
            tasks,
            "--include_path",
            str(self.root / "tasks"),
            "--batch_size",
            "16",
            "--metadata",
            *extra,
            f"recipe={recipe}",
            f"role={role}",
            "--output_path",
            str(partial),
            "--log_samples",
        )
        partial.rename(out)

    def compare(self) -> None:
        runs = self.root / "results"
        common = ["--results", str(runs), "--join-on", "recipe", "--quiet"]
        sides = ["--proxy-where", "role=proxy", "--target-where", "role=target"]
        target = f"{TASK}:exact_match:{FILTER}"
        report(
            self.root / "compare",
            "predict",
            "compare",
            *common,
            *sides,
            "--benchmark",
            f"rbridge=rbridge_gsm8k:{target}",
            "--benchmark",
            f"baselines=rbridge_baselines_gsm8k:{target}",
            "--benchmark",
            f"proxy_accuracy={TASK}:{target}",
            "--seed",
            str(self.seed),
            "--n-boot",
            str(self.size.n_boot),
        )
        report(
            self.root / "rank",
            "predict",
            "rank",
            *common,
            *sides,
            "--proxy-task",
            "rbridge_gsm8k",
            "--proxy-metric",
            "rbridge_nll",
            "--target-task",
            TASK,
            "--target-metric",
            "exact_match",
            "--target-filter",
            FILTER,
            "--seed",
            str(self.seed),
            "--n-boot",
            str(self.size.n_boot),
        )

    def summary(self) -> str:
        """Per recipe, the models and the numbers the fit used, read back from the results
        files; then the wall time of every stage."""
        rows = [
            "| recipe | mixture (token shares) | target accuracy | proxy rbridge_nll | "
            "proxy trace_nll | proxy gold_nll | proxy accuracy |",
            "|---|---|---|---|---|---|---|",
        ]
        for recipe in self.recipes:
            target = _results(self.root / "results" / f"{recipe.name}-target")
            proxy = _results(self.root / "results" / f"{recipe.name}-proxy")
            rows.append(
                f"| {recipe.name} | {recipe.describe()} "
                f"| {target[TASK][f'exact_match,{FILTER}']:.4f} "
                f"| {proxy['rbridge_gsm8k']['rbridge_nll,none']:.4f} "
                f"| {proxy['rbridge_gsm8k']['trace_nll,none']:.4f} "
                f"| {proxy['rbridge_baselines_gsm8k']['gold_nll,none']:.4f} "
                f"| {proxy[TASK][f'exact_match,{FILTER}']:.4f} |"
            )
        models = self.record["models"]
        lines = [
            *rows,
            "",
            "| model | parameters | training tokens | wall (s) |",
            "|---|---|---|---|",
        ]
        for role in ("proxy", "target"):
            sample = models[f"{self.recipes[0].name}-{role}"]
            wall = sum(m["wall_s"] for n, m in models.items() if n.endswith(f"-{role}"))
            lines.append(
                f"| {role} (each of {len(self.recipes)}) | {sample['parameters']:,} "
                f"| {sample['tokens']:,} | {wall / len(self.recipes):.0f} each |"
            )
        frontier = models["frontier"]
        lines.append(
            f"| frontier | {frontier['parameters']:,} | {frontier['tokens']:,} "
            f"| {frontier['wall_s']:.0f} |"
        )
        stages = self.record["stages"]
        total = sum(stages.values())
        lines += ["", f"| stage | wall (s) | share of {total:.0f} s |", "|---|---|---|"]
        lines += [f"| {name} | {sec:.0f} | {sec / total:.1%} |" for name, sec in stages.items()]
        return "\n".join(lines) + "\n"


def _results(folder: Path) -> dict:
    (path,) = folder.glob("*/results_*.json")
    return json.loads(path.read_text(encoding="utf-8"))["results"]


def run_study(root: Path, *, size: str = "default", seed: int = 0, threads: int = 1) -> Path:
    """Run (or resume) the study in `root`; returns the folder of `rbridge predict compare`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every input is made here
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    root.mkdir(parents=True, exist_ok=True)
    study = Study(root, size, seed, threads)
    sizes = study.size
    holder: dict = {}

    def prepare() -> None:
        study.write_benchmark()
        holder["tokenizer"] = study.tokenizer()

    study.stage("benchmark and tokenizer", prepare)
    tokenizer = holder["tokenizer"]
    cleanest = study.recipes[0]
    study.stage(
        "train frontier",
        lambda: study.train(cleanest, {"frontier": sizes.frontier}, tokenizer),
    )
    study.stage("frontier traces", study.frontier_traces)

    def train_ladder() -> None:
        for recipe in study.recipes:
            study.train(
                recipe,
                {f"{recipe.name}-proxy": sizes.proxy, f"{recipe.name}-target": sizes.target},
                tokenizer,
            )

    study.stage("train proxies and targets", train_ladder)
    study.stage(
        "target accuracy (lm-eval)",
        lambda: [study.evaluate(f"{r.name}-target", r.name, "target") for r in study.recipes],
    )
    study.stage(
        "proxy scores (rbridge eval)",
        lambda: [study.evaluate(f"{r.name}-proxy", r.name, "proxy") for r in study.recipes],
    )
    study.stage("compare and rank", study.compare)
    summary = study.summary()
    atomic_write(root / "summary.md", lambda p: p.write_text(summary, encoding="utf-8"))
    say(f"done: {root / 'compare' / 'compare.md'} (the table), {root / 'rank' / 'rank.md'}")
    say(f"{root / 'summary.md'}:\n{summary}")
    return root / "compare"


def report(out: Path, *argv: str) -> None:
    """A `rbridge predict` report written to a folder beside `out`, moved into place whole."""
    if out.exists():
        return
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    rbridge(*argv, "--out-dir", str(partial))
    partial.rename(out)


def rbridge(*argv: str) -> None:
    """Run one `rbridge` command in this process, as the user would type it."""
    from rbridge_tasks.commands import SUBCOMMANDS, guarded

    say("$ rbridge " + shlex.join(argv))
    code = guarded(argv[0], SUBCOMMANDS[argv[0]], list(argv[1:]))
    if code != 0:  # the command has said why, in one line, under the command it prints
        raise SystemExit(code)


def say(message: str) -> None:
    print(f"[study] {message}", file=sys.stderr, flush=True)
