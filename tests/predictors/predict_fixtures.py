"""Real lm-eval runs on tiny local models, written to disk the way `lm_eval --output_path
--log_samples` writes them, for the predictors tests.

Two tasks built from real benchmark data in ../shared/data:
- `tiny_nll` (loglikelihood): the model's NLL of a GSM8K reference solution given the question,
  reported as `answer_nll` with higher_is_better false and aggregation mean, the shape of the
  rBridge proxy metrics (`rbridge_nll`, `trace_nll`);
- `tiny_mc` (multiple_choice): ARC-Challenge questions, `acc` (higher is better).

Runs (metadata passed through TaskManager(metadata=...), as `--metadata` does on the CLI):
- runs/: for each recipe A-D, a "proxy" (n_embd 16) and a "target" (n_embd 32) model; a recipe
  is a number of training steps on real text (ARC-Challenge train questions with their answers,
  GSM8K train solutions), so recipes really differ and scores are not all ties; both models
  score both tasks. Recipes A, B are corpus "web", C, D corpus "code".
- extra/dup/: a second proxy run for recipe A (duplicate key).
- extra/orphan/: a proxy run for recipe E, which has no target (unjoined).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from tiny_models import DATA_DIR, build_tiny_lm, corpus_texts  # noqa: E402

N_NLL_DOCS = 8
N_MC_DOCS = 16
# recipe: (corpus, seed, training steps)
RECIPES = {"A": ("web", 11, 0), "B": ("web", 12, 8), "C": ("code", 13, 20), "D": ("code", 14, 40)}
EXTRA = {"dup": ("A", "web", 21, 0), "orphan": ("E", "web", 22, 8)}

TASK_NLL = """task: tiny_nll
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: " {{{{answer}}}}"
process_results: !function tiny_utils.process_results
metric_list:
  - metric: answer_nll
    aggregation: mean
    higher_is_better: false
metadata:
  version: 1
"""

TASK_MC = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""

UTILS = """
def process_results(doc, results):
    loglikelihood, _ = results[0]
    return {"answer_nll": -loglikelihood / max(1, len(doc["answer"].split()))}
"""


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_tasks(root: Path) -> Path:
    tasks = root / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    gsm = read_jsonl(DATA_DIR / "gsm8k" / "test.jsonl")
    nll_docs = [
        {
            "id": f"gsm8k-test-{i}",
            "question": row["question"],
            "answer": row["answer"].split("\n")[0],
        }
        for i, row in enumerate(gsm[:N_NLL_DOCS])
    ]
    arc_path = DATA_DIR / "arc_challenge" / "ARC-Challenge-Test.jsonl"
    arc = read_jsonl(arc_path)[:N_MC_DOCS]
    mc_docs = [
        {
            "id": row["id"],
            "question": row["question"]["stem"],
            "choices": [c["text"] for c in row["question"]["choices"]],
            "label": [c["label"] for c in row["question"]["choices"]].index(row["answerKey"]),
        }
        for row in arc
    ]
    (tasks / "nll.json").write_text(json.dumps(nll_docs), encoding="utf-8")
    (tasks / "mc.json").write_text(json.dumps(mc_docs), encoding="utf-8")
    (tasks / "tiny_nll.yaml").write_text(TASK_NLL.format(data=tasks / "nll.json"))
    (tasks / "tiny_mc.yaml").write_text(TASK_MC.format(data=tasks / "mc.json"))
    (tasks / "tiny_utils.py").write_text(UTILS)
    return tasks


def run_lm_eval(model_dir: Path, tasks_dir: Path, out_dir: Path, metadata: dict[str, str]) -> None:
    """simple_evaluate + EvaluationTracker, as lm-eval's own `run` command saves results."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False, metadata=metadata)
    tracker = EvaluationTracker(output_path=str(out_dir))
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir}",
        tasks=["tiny_nll", "tiny_mc"],
        task_manager=manager,
        evaluation_tracker=tracker,
        log_samples=True,
        batch_size=16,
        device="cpu",
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])


def training_texts(limit: int = 300) -> list[str]:
    """Text a recipe trains on: ARC train questions with the correct answer, GSM8K solutions."""
    texts = []
    arc_path = DATA_DIR / "arc_challenge" / "ARC-Challenge-Train.jsonl"
    for row in read_jsonl(arc_path)[:limit]:
        answer = next(
            c["text"] for c in row["question"]["choices"] if c["label"] == row["answerKey"]
        )
        texts.append(f"Question: {row['question']['stem']}\nAnswer: {answer}")
    gsm_path = DATA_DIR / "gsm8k" / "train.jsonl"
    for row in read_jsonl(gsm_path)[:limit]:
        texts.append(f"Question: {row['question']}\nAnswer: {row['answer'].split(chr(10))[0]}")
    return texts


def train_briefly(model_dir: Path, texts: list[str], steps: int, seed: int) -> None:
    """A few AdamW steps of next-token prediction, saved back in place."""
    if steps == 0:
        return
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch_index = torch.randint(0, len(texts), (16,), generator=generator).tolist()
        batch = tokenizer(
            [texts[i] for i in batch_index],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=96,
        )
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(model_dir)


def build_runs(root: Path) -> Path:
    """All runs, on one CPU thread: torch's default thread pool thrashes on a shared 2-core box
    (a training step went from 0.06 s to 1.8 s under pytest-xdist)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build_runs(root)
    finally:
        torch.set_num_threads(threads)


def _build_runs(root: Path) -> Path:
    tasks = write_tasks(root)
    texts = corpus_texts(400)
    train_texts = training_texts()
    plan = []
    for recipe, (corpus, seed, steps) in RECIPES.items():
        plan.append((root / "runs", f"proxy-{recipe}", recipe, corpus, "proxy", seed, 16, steps))
        plan.append(
            (root / "runs", f"target-{recipe}", recipe, corpus, "target", seed + 100, 32, steps)
        )
    for name, (recipe, corpus, seed, steps) in EXTRA.items():
        plan.append(
            (root / "extra" / name, f"proxy-{name}", recipe, corpus, "proxy", seed, 16, steps)
        )
    for out_dir, name, recipe, corpus, role, seed, width, steps in plan:
        model_dir = build_tiny_lm(root / "models" / name, seed=seed, n_embd=width, texts=texts)
        train_briefly(model_dir, train_texts, steps, seed)
        run_lm_eval(
            model_dir, tasks, out_dir / name, {"recipe": recipe, "role": role, "corpus": corpus}
        )
    return root
