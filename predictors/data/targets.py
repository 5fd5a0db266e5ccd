"""Which stock lm-eval task and metric is each benchmark's accuracy target (and proxy-accuracy
baseline), so `rbridge predict` needs no --target-metric/--target-filter for the six benchmarks.

Checked against the task YAMLs of the installed lm-eval 0.4.13 (`lm_eval/tasks/...`):
- gsm8k: `gsm8k` (5-shot, generate_until) reports `exact_match` under two filters; `strict-match`
  reads only the `#### N` answer line, `flexible-extract` the last number. Strict is the harness
  convention for GSM8K leaderboards and does not reward a stray number.
- math500: `minerva_math500` (HuggingFaceH4/MATH-500, 4-shot Minerva prompt), `exact_match` after
  the Minerva answer normalisation (it also reports `math_verify`), filter `none`.
- arc_challenge: `arc_challenge` (cloze form, each option text scored), `acc_norm`: lm-eval's
  per-character length normalisation, the variant OLMES and DataDecide report for ARC.
- mmlu_pro: MMLU-Pro STEM, as in the paper: the unweighted mean of `exact_match`
  (`custom-extract`) over the six STEM subtasks below. The paper pools 5,791 questions; these six
  categories hold 5,878 and a size-weighted mean differs slightly from this unweighted one.
- csqa: `commonsense_qa` (options listed, the letter scored), `acc`.
- humaneval: `humaneval` (greedy, 0-shot), `pass@1` under the `create_test` filter (the prompt
  prepended to the completion before the tests run; lm-eval needs `--confirm_run_unsafe_code`).

`rbridge_<benchmark>` proxy tasks default their target to the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass

MMLU_PRO_STEM = (
    "mmlu_pro_biology",
    "mmlu_pro_chemistry",
    "mmlu_pro_computer_science",
    "mmlu_pro_engineering",
    "mmlu_pro_math",
    "mmlu_pro_physics",
)


@dataclass(frozen=True)
class Target:
    """The stock lm-eval task and metric that a benchmark's large-model accuracy is read from."""

    benchmark: str
    task: str  # a task name, glob or comma-separated list (averaged), as --target-task takes
    metric: str
    filter: str
    higher_is_better: bool = True


TARGETS: dict[str, Target] = {
    t.benchmark: t
    for t in (
        Target("gsm8k", "gsm8k", "exact_match", "strict-match"),
        Target("math500", "minerva_math500", "exact_match", "none"),
        Target("arc_challenge", "arc_challenge", "acc_norm", "none"),
        Target("mmlu_pro", ",".join(MMLU_PRO_STEM), "exact_match", "custom-extract"),
        Target("csqa", "commonsense_qa", "acc", "none"),
        Target("humaneval", "humaneval", "pass@1", "create_test"),
    )
}
PROXY_PREFIX = "rbridge_"


def lookup(task: str | None) -> Target | None:
    """The entry named by a benchmark name, its stock task, or its `rbridge_` proxy task."""
    if not task:
        return None
    name = task.removeprefix(PROXY_PREFIX)
    if name in TARGETS:
        return TARGETS[name]
    return next((t for t in TARGETS.values() if t.task == task), None)


def markdown_table() -> str:
    """The table as the README shows it (a test keeps the two equal)."""
    rows = ["| benchmark | lm-eval task | metric | filter |", "|---|---|---|---|"]
    for t in TARGETS.values():
        task = " + ".join(f"`{n}`" for n in t.task.split(","))
        rows.append(f"| {t.benchmark} | {task} | `{t.metric}` | `{t.filter}` |")
    return "\n".join(rows) + "\n"
