"""The documents an rBridge task scores: benchmark questions joined with their frontier traces."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rbridge_tasks.benchmarks import (
    Question,
    check_benchmark,
    load_questions,
    normalise_text,
    proxy_prompt,
    question_body,
    reference_answer,
)
from rbridge_tasks.errors import RBridgeError
from rbridge_tasks.records import TraceRecord
from rbridge_tasks.released import ReleasedMapping, fetch_released, read_released
from rbridge_tasks.scoring import AGGREGATIONS
from rbridge_tasks.trace_io import benchmark_file, read_traces
from rbridge_tasks.weights import MINMAX_SCOPES, MINMAX_TARGETS

logger = logging.getLogger(__name__)

# The task options a user sets with `--metadata key=value` (README, "Options"), with one line of
# help each; `rbridge eval --help` lists them.
METADATA_KEYS: dict[str, str] = {
    "traces": "trace file, folder of <benchmark>.jsonl files, or a local released dataset",
    "data_dir": "folder laid out like shared/data/ with the benchmark questions",
    "scoring": "document (one request per trace; hf-rbridge/vllm-rbridge) or pieces (stock)",
    "minmax_on": "proxy_tokens (Algorithm 1) or frontier_tokens (MinMax before the letter map)",
    "minmax_scope": "trace (Algorithm 1) or benchmark",
    "aggregation": "mean (Algorithm 1), weighted_mean or sum: the rbridge_nll headline",
    "context": "qa (Question/Answer), concat (question then trace) or fewshot",
    "fewshot_k": "number of exemplars for context=fewshot (default 5)",
    "last_tokens": "restrict the token statistics to the last N trace tokens",
    "check_questions": "true/false: each trace's question must contain the benchmark's",
    "strict_split": "pieces mode: fail instead of warning when tokens share a group NLL",
    "released_mapping": "JSON/YAML file naming the released dataset's fields",
    "tokenizer": "proxy tokenizer (default: the model's pretrained)",
    "tokenizer_revision": "revision of the proxy tokenizer",
}
SCORING_MODES = ("pieces", "document")  # the first is the default
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

    benchmark: str
    traces: str | None = None
    data_dir: str | None = None
    released_mapping: str | None = None
    scoring: str = "pieces"
    minmax_on: str = "proxy_tokens"
    minmax_scope: str = "trace"
    aggregation: str = "mean"
    context: str = "qa"
    fewshot_k: int = 5
    last_tokens: int | None = None
    check_questions: bool = True
    strict_split: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TaskSettings:
        benchmark = metadata.get("benchmark")
        if not isinstance(benchmark, str):
            raise RBridgeError("the task YAML must set metadata.benchmark")
        reject_misspelled_keys(metadata)
        return cls(
            benchmark=check_benchmark(benchmark),
            traces=_optional_str(metadata.get("traces")),
            data_dir=_optional_str(metadata.get("data_dir")),
            released_mapping=_optional_str(metadata.get("released_mapping")),
            scoring=_choice(metadata, "scoring", SCORING_MODES),
            minmax_on=_choice(metadata, "minmax_on", MINMAX_TARGETS),
            minmax_scope=_choice(metadata, "minmax_scope", MINMAX_SCOPES),
            aggregation=_choice(metadata, "aggregation", AGGREGATIONS),
            context=_choice(metadata, "context", CONTEXTS),
            fewshot_k=_positive_int(metadata, "fewshot_k") or 5,
            last_tokens=_positive_int(metadata, "last_tokens"),
            check_questions=parse_flag(metadata, "check_questions", True),
            strict_split=parse_flag(metadata, "strict_split", False),
        )

    def resolved(self) -> dict[str, Any]:
        """The options in force, defaults included, for the results file's metadata (so runs
        that differ in scoring or MinMax can be told apart without knowing the defaults)."""
        names = ("scoring", "minmax_on", "minmax_scope", "aggregation", "context")
        out: dict[str, Any] = {name: getattr(self, name) for name in names}
        if self.context == "fewshot":
            out["fewshot_k"] = self.fewshot_k
        if self.last_tokens is not None:
            out["last_tokens"] = self.last_tokens
        return out


def reject_misspelled_keys(metadata: Mapping[str, Any]) -> None:
    """A key close to one of ours is a typo that would silently do nothing: fail on it.

    Other unknown keys pass: lm-eval merges every model arg into task metadata, and users add
    their own keys (e.g. `recipe=...` for `rbridge predict --join-on`).
    """
    for key in metadata:
        if key in METADATA_KEYS or key in _OTHER_KEYS:
            continue
        close = difflib.get_close_matches(str(key), METADATA_KEYS, n=1, cutoff=0.75)
        if close:
            raise RBridgeError(
                f"--metadata {key}=...: unknown rBridge option; did you mean {close[0]!r}? "
                f"(the options are {sorted(METADATA_KEYS)})"
            )


def load_trace_records(settings: TaskSettings) -> tuple[list[TraceRecord], str]:
    """The benchmark's trace records and a description of where they came from.

    `traces` may be a trace file (records of other benchmarks are skipped, so one file can serve
    the whole `rbridge` group), a folder with `<benchmark>.jsonl[.gz]` files, or a local copy of
    the released dataset; without it the released traces are fetched from the hub.
    """
    benchmark = settings.benchmark
    mapping = ReleasedMapping.load(settings.released_mapping)
    if settings.traces is None:
        root = fetch_released(benchmark)
        return read_released(root, benchmark, mapping), f"{root} (released traces)"
    path = Path(settings.traces).expanduser().resolve()
    if not path.exists():
        raise RBridgeError(f"traces file not found: {path} (from --metadata traces=...)")
    if path.is_dir():
        file = benchmark_file(path, benchmark)
        if file is None:
            if (path / "traces").is_dir():
                return read_released(path, benchmark, mapping), f"{path} (released traces)"
            raise RBridgeError(
                f"traces folder {path} has neither {benchmark}.jsonl[.gz] nor a "
                "released-dataset traces/ folder"
            )
        path = file
    records = read_traces(path)
    mine = [r for r in records if r.benchmark == benchmark]
    if not mine:
        found = sorted({r.benchmark for r in records})
        raise RBridgeError(f"{path} has no traces for benchmark {benchmark!r} (it has {found})")
    return mine, str(path)


def build_documents(settings: TaskSettings) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One document per trace, in the benchmark's order, with its frontier confidences; and
    where they came from, for the results file's `configs[task].metadata`."""
    records, origin = load_trace_records(settings)
    questions = load_questions(settings.benchmark, settings.data_dir)
    position = {q.id: i for i, q in enumerate(questions)}
    unknown = [r.id for r in records if r.id not in position]
    if unknown:
        raise RBridgeError(
            f"{origin}: {len(unknown)} trace id(s) are not {settings.benchmark} question ids, "
            f"e.g. {unknown[:5]}; the benchmark's ids look like {[q.id for q in questions[:3]]}"
        )
    records.sort(key=lambda r: position[r.id])
    without_trace = len(position.keys() - {r.id for r in records})
    if without_trace:
        logger.warning(
            "%s: %d of the %d questions have no trace in %s; they are not scored",
            settings.benchmark,
            without_trace,
            len(questions),
            origin,
        )
    if settings.check_questions:
        _check_questions(records, questions, position, origin)
    fewshot = None
    if settings.context == "fewshot":
        from rbridge_tasks.fewshot import FewshotContext

        fewshot = FewshotContext.load(settings.benchmark, settings.data_dir, settings.fewshot_k)
    docs = []
    for record in records:
        question = questions[position[record.id]]
        if fewshot is not None:
            prompt = fewshot.prompt(question)
        elif settings.context == "concat":
            prompt = question_body(question)
        else:
            prompt = proxy_prompt(question)
        docs.append(
            {
                "id": record.id,
                "benchmark": record.benchmark,
                "question": question.question,
                "gold": question.gold,
                "gold_text": reference_answer(question),
                "prompt": prompt,
                "trace": record.trace,
                "frontier_model": record.frontier_model,
                # token lengths (in characters) suffice to map letters to frontier tokens
                "frontier_token_chars": [len(text) for text in record.token_texts],
                "frontier_logprobs": list(record.token_logprobs),
                "answer": record.answer,
                "correct": record.correct,
            }
        )
    provenance = {
        "traces_source": origin,
        "frontier_models": sorted({r.frontier_model for r in records}),
        "pack_documents": len(records),
        "benchmark_questions": len(questions),
        "questions_without_trace": without_trace,
    }
    return docs, provenance


def _check_questions(
    records: list[TraceRecord], questions: list[Question], position: dict[str, int], origin: str
) -> None:
    """Guard against traces joined to the wrong question (ids from another split or ordering)."""
    for record in records:
        expected = normalise_text(questions[position[record.id]].question)
        if expected not in normalise_text(record.question):
            raise RBridgeError(
                f"{origin}: id {record.id!r}, field 'question': the trace's question "
                f"{record.question[:80]!r} does not contain the benchmark's question "
                f"{expected[:80]!r}; the ids may come from another split or ordering (pass "
                "--metadata check_questions=false to skip this check)"
            )


def parse_flag(metadata: Mapping[str, Any], key: str, default: bool) -> bool:
    """A true/false option from JSON metadata, `key=value` strings or the Python API alike."""
    value = metadata.get(key, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise RBridgeError(f"--metadata {key}={value!r}: expected true or false")
    return lowered in ("true", "1", "yes")


def _choice(metadata: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = str(metadata.get(key, choices[0])).strip()
    if value not in choices:
        raise RBridgeError(f"--metadata {key}={value!r}: expected one of {list(choices)}")
    return value


def _positive_int(metadata: Mapping[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0 or isinstance(value, bool):
        raise RBridgeError(f"--metadata {key}={value!r}: expected a positive whole number")
    return number


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
