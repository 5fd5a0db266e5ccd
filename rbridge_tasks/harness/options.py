"""The rBridge task options (`--metadata key=value`), parsed and checked once."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.options import choice, optional_str, parse_flag, positive_int
from rbridge_tasks.formula.numbers import AGGREGATIONS
from rbridge_tasks.formula.weights import MINMAX_SCOPES, MINMAX_TARGETS
from rbridge_tasks.questions.source import QuestionSource, source_from_options

# The task options a user sets with `--metadata key=value` (README, "Options"), with one line of
# help each; `rbridge eval --help` lists them.
METADATA_KEYS: dict[str, str] = {
    "traces": "trace file, folder of <benchmark>.jsonl files, or a local released dataset",
    "data_dir": "folder laid out like shared/data/ with the benchmark questions",
    "minmax_on": "proxy_tokens (Algorithm 1) or frontier_tokens (MinMax before the letter map)",
    "minmax_scope": "trace (Algorithm 1) or benchmark",
    "aggregation": "mean (Algorithm 1), weighted_mean or sum: the rbridge_nll headline",
    "context": "qa (Question/Answer), concat (question then trace) or fewshot",
    "fewshot_k": "number of exemplars for context=fewshot (default 5)",
    "last_tokens": "restrict the token statistics to the last N trace tokens",
    "check_questions": "true/false: each trace's question must contain the benchmark's",
    "strict_split": "stock backends: fail instead of warning when tokens share a group NLL",
    "released_mapping": "JSON/YAML file naming the released dataset's fields",
    "tokenizer": "proxy tokenizer for minmax_scope=benchmark and the span-mask tasks (default: "
    "the model's pretrained)",
    "tokenizer_revision": "revision of the proxy tokenizer",
    "questions": "your own benchmark: a JSONL/CSV question file (with benchmark=NAME)",
    "id_field": "question file / lm-eval task: the id field (default id / the document index)",
    "question_field": "question file: the question field (default question)",
    "answer_field": "question file: the gold answer field (default answer)",
    "choices_field": "question file: the options field, for multiple choice (default choices)",
    "answer_type": "number, math, choice, code or text: how answers are checked (default: guessed)",
    "source_task": "an lm-eval task whose documents and prompts are the questions",
    "source_include_path": "folder(s) of task YAMLs for source_task (default: this YAML's)",
    "mask_data": "span-mask tasks: a local copy of trillionlabs/rbridge-mask (folder or JSONL)",
}
# Options that no longer exist, with what to do instead: silently ignoring them would be worse.
REMOVED_KEYS = {
    "scoring": "the task always asks for one document request and every backend answers it "
    "(hf-rbridge/vllm-rbridge in one pass, other models through their loglikelihood); drop it",
}
CONTEXTS = ("qa", "concat", "fewshot")
# Keys lm-eval itself puts into task metadata, and model args (lm-eval merges them in): never ours
# to reject, even when a name happens to be close to one of ours.
_OTHER_KEYS = frozenset(
    {"benchmark", "version", "config_source", "pretrained", "revision", "trust_remote_code"}
    | {"add_bos_token", "prefix_token_id", "max_length", "max_model_len", "batch_size"}
    | {"tokenizer_mode", "dtype", "device", "softmax_dtype", "data_parallel_size"}
)


@dataclass(frozen=True)
class TaskSettings:
    """The task's options, parsed and checked once (see METADATA_KEYS)."""

    source: QuestionSource
    traces: str | None = None
    data_dir: str | None = None
    released_mapping: str | None = None
    minmax_on: str = "proxy_tokens"
    minmax_scope: str = "trace"
    aggregation: str = "mean"
    context: str = "qa"
    fewshot_k: int = 5
    last_tokens: int | None = None
    check_questions: bool = True
    strict_split: bool = False

    @property
    def benchmark(self) -> str:
        return self.source.benchmark

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TaskSettings:
        """The options of a task's metadata (its YAML's, with lm-eval's `--metadata` merged in).

        Relative paths (`questions`, `source_include_path`) are read from the current folder,
        else from the folder of the YAML that defines the task (`config_source`).
        """
        reject_misspelled_keys(metadata)
        benchmark = optional_str(metadata.get("benchmark"))
        questions = optional_str(metadata.get("questions"))
        source_task = optional_str(metadata.get("source_task"))
        if benchmark is None and source_task is None:
            raise RBridgeError(
                "the task YAML must set metadata.benchmark (one of the six, or your benchmark's "
                "name with questions=FILE), or source_task=LM_EVAL_TASK"
            )
        home = metadata.get("config_source")
        include = metadata.get("source_include_path") or ([str(Path(home).parent)] if home else [])
        source = source_from_options(
            benchmark,
            _located(questions, home),
            source_task,
            id_field=optional_str(metadata.get("id_field")),
            question_field=optional_str(metadata.get("question_field")),
            answer_field=optional_str(metadata.get("answer_field")),
            choices_field=optional_str(metadata.get("choices_field")),
            answer_type=optional_str(metadata.get("answer_type")),
            include_path=[
                _located(str(path), home)
                for path in ([include] if isinstance(include, str) else include)
            ],
        )
        return cls(
            source=source,
            traces=optional_str(metadata.get("traces")),
            data_dir=optional_str(metadata.get("data_dir")),
            released_mapping=optional_str(metadata.get("released_mapping")),
            minmax_on=choice(metadata, "minmax_on", MINMAX_TARGETS),
            minmax_scope=choice(metadata, "minmax_scope", MINMAX_SCOPES),
            aggregation=choice(metadata, "aggregation", AGGREGATIONS),
            context=choice(metadata, "context", CONTEXTS),
            fewshot_k=positive_int(metadata, "fewshot_k") or 5,
            last_tokens=positive_int(metadata, "last_tokens"),
            check_questions=parse_flag(metadata, "check_questions", True),
            strict_split=parse_flag(metadata, "strict_split", False),
        )

    def resolved(self) -> dict[str, Any]:
        """The options in force, defaults included, for the results file's metadata (so runs
        that differ in MinMax or context can be told apart without knowing the defaults)."""
        names = ("minmax_on", "minmax_scope", "aggregation", "context")
        out: dict[str, Any] = {name: getattr(self, name) for name in names}
        if self.context == "fewshot":
            out["fewshot_k"] = self.fewshot_k
        if self.last_tokens is not None:
            out["last_tokens"] = self.last_tokens
        return out


def _located(path: str | None, config_source: Any) -> str | None:
    if path is None or Path(path).is_absolute() or Path(path).exists() or not config_source:
        return path
    return os.path.normpath(Path(str(config_source)).parent / path)


def reject_misspelled_keys(metadata: Mapping[str, Any]) -> None:
    """A key close to one of ours is a typo that would silently do nothing: fail on it.

    Other unknown keys pass: lm-eval merges every model arg into task metadata, and users add
    their own keys (e.g. `recipe=...` for `rbridge predict --join-on`).
    """
    for key in metadata:
        if key in REMOVED_KEYS:
            raise RBridgeError(f"--metadata {key}=...: no longer an option: {REMOVED_KEYS[key]}")
        if key in METADATA_KEYS or key in _OTHER_KEYS:
            continue
        close = difflib.get_close_matches(str(key), METADATA_KEYS, n=1, cutoff=0.75)
        if close:
            raise RBridgeError(
                f"--metadata {key}=...: unknown rBridge option; did you mean {close[0]!r}? "
                f"(the options are {sorted(METADATA_KEYS)})"
            )
