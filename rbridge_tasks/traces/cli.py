"""`rbridge traces`: generate, confidences, import, validate and stats for trace packs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.hub import DATA_DIR_OPTION
from rbridge_tasks.questions.source import QuestionSource, source_from_options
from rbridge_tasks.questions.sources import ANSWER_TYPES, BENCHMARK_NAMES
from rbridge_tasks.records.files import read_pack, write_traces

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
INTERRUPTED = 130
PACK_HELP = "a trace file, or a folder of <benchmark>.jsonl[.gz] files (as `rbridge eval` reads)"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    flag = DATA_DIR_OPTION.set("--data-dir")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(
            f"rbridge traces {args.command}: interrupted; everything finished so far is saved; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        DATA_DIR_OPTION.reset(flag)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbridge traces", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="frontier traces with per-token logprobs")
    _question_source_args(gen)
    gen.add_argument("--backend", required=True, choices=("hf", "vllm", "openai"))
    gen.add_argument("--model", required=True, help="local path / hub id, or the API model name")
    gen.add_argument("--out", required=True, help="trace file (.jsonl) to create or resume")
    gen.add_argument("--model-name", help="frontier_model to record (default: --model)")
    gen.add_argument(
        "--prompt",
        choices=("cot", "paper"),
        default="cot",
        help="cot: zero-shot chain of thought closing with an answer line (default); paper: "
        "the rBridge paper's system prompt and JSON reply, its 'reasoning' scored",
    )
    gen.add_argument(
        "--prompt-template",
        help="your own prompt: a text file with {question} (the question, options listed) and "
        "optionally {options}; ask for a closing 'The answer is ...' line",
    )
    gen.add_argument("--limit", type=int, help="only the first N questions")
    gen.add_argument("--ids", help="only these question ids (comma separated)")
    gen.add_argument(
        "--category",
        action="append",
        help="MMLU-Pro only: keep this category (repeatable), e.g. math",
    )
    gen.add_argument(
        "--only-correct", action="store_true", help="keep only traces whose answer is correct"
    )
    gen.add_argument("--max-new-tokens", type=int, default=1024)
    gen.add_argument(
        "--stop",
        action="append",
        help="stop string (repeatable; default: "
        "'\\nQuestion:' for completion prompts, none for chat)",
    )
    gen.add_argument(
        "--humaneval-timeout",
        type=float,
        default=10.0,
        help="seconds for a HumanEval program to pass its tests",
    )
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    _local_model_args(gen)
    api = gen.add_argument_group("openai backend")
    api.add_argument("--base-url", default=DEFAULT_OPENAI_URL)
    api.add_argument(
        "--api",
        choices=("chat", "completions"),
        default="chat",
        help="/chat/completions (default) or the legacy /completions",
    )
    api.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key"
    )
    api.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    api.add_argument("--requests-per-minute", type=float, help="client-side request budget")
    api.add_argument("--max-retries", type=int, default=6)
    api.add_argument("--backoff-base", type=float, default=1.0, help="first retry delay (s)")
    api.add_argument("--backoff-cap", type=float, default=60.0, help="longest retry delay (s)")
    api.add_argument(
        "--timeout", type=float, default=600.0, help="per request, the whole answer included (s)"
    )
    gen.set_defaults(run=_generate)

    conf = commands.add_parser(
        "confidences", help="per-token logprobs for existing traces from a local LM"
    )
    conf.add_argument("input", help="trace file (text-only records are fine)")
    conf.add_argument("output", help="trace file to create or resume")
    conf.add_argument("--model", required=True)
    conf.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    conf.add_argument("--model-name", help="frontier_model to record (default: --model)")
    conf.add_argument(
        "--context",
        choices=("prompt", "record"),
        default="prompt",
        help="what the model reads before the trace: the frontier prompt of the "
        "benchmark question (default) or the record's own question text",
    )
    _question_source_args(conf, benchmark_help="--questions: the benchmark those records name")
    conf.add_argument("--limit", type=int, help="only the first N records")
    conf.add_argument("--no-progress", action="store_true", help="no progress bar")
    _local_model_args(conf)
    conf.set_defaults(run=_confidences)

    imp = commands.add_parser("import", help="trace records from traces made elsewhere")
    imp.add_argument(
        "--format",
        required=True,
        choices=("released", "rereading", "zero-shot-cot-log", "mmlu-pro-outputs", "jsonl"),
    )
    imp.add_argument("source", help="the file (or, for released, the dataset folder)")
    imp.add_argument("--out", help="trace file to write (required unless --inspect)")
    imp.add_argument("--benchmark", choices=BENCHMARK_NAMES)
    imp.add_argument("--data-dir")
    imp.add_argument("--author-model", help="who wrote the traces (default: from the file)")
    imp.add_argument(
        "--generation",
        choices=("cot", "vanilla"),
        default="cot",
        help="rereading: which generation (default cot, see the docs)",
    )
    imp.add_argument("--mapping", help="released: field mapping file (JSON/YAML)")
    imp.add_argument(
        "--inspect",
        action="store_true",
        help="released: print the fields found, a sample row and the mapping that would be used",
    )
    imp.add_argument(
        "--id-field", default="id", help="jsonl: the question id field (dotted for nested: a.b)"
    )
    imp.add_argument(
        "--text-field", default="trace", help="jsonl: the trace text field (dotted for nested)"
    )
    imp.add_argument("--answer-field", help="jsonl: the model's answer (default: extracted)")
    imp.add_argument(
        "--ids-are-row-indexes",
        action="store_true",
        help="jsonl: ids are 0-based rows of the benchmark file; without an id field, the "
        "file's own record order",
    )
    imp.add_argument("--only-correct", action="store_true")
    imp.add_argument("--humaneval-timeout", type=float, default=10.0)
    imp.set_defaults(run=_import)

    val = commands.add_parser("validate", help="check a trace pack and its benchmark coverage")
    val.add_argument("path", help=PACK_HELP)
    _question_source_args(val, benchmark_help="--questions: the benchmark those records name")
    val.add_argument(
        "--text-only", action="store_true", help="accept records without frontier tokens"
    )
    val.add_argument(
        "--min-coverage",
        type=float,
        help="fail when a benchmark's share of questions with a trace is lower (without it, a "
        "share below 25%% is a warning)",
    )
    val.add_argument("--strict", action="store_true", help="fail on warnings too")
    val.add_argument("--json", action="store_true", help="print the report as JSON")
    val.set_defaults(run=_validate)

    st = commands.add_parser("stats", help="summary statistics of trace files")
    st.add_argument("paths", nargs="+", help=PACK_HELP)
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=_stats)
    return parser


def _question_source_args(
    parser: argparse.ArgumentParser,
    benchmark_help: str = "one of the six, or your own benchmark's name with --questions",
) -> None:
    group = parser.add_argument_group(
        "questions (one of the six, a question file of your own, or an lm-eval task)"
    )
    group.add_argument("--benchmark", help=benchmark_help)
    group.add_argument(
        "--data-dir",
        help="the six: files laid out like shared/data/ (default: the Hugging Face hub datasets)",
    )
    group.add_argument("--questions", help="your own benchmark: a JSONL or CSV question file")
    group.add_argument("--task", help="an lm-eval task whose documents are the questions")
    group.add_argument(
        "--include-path", action="append", default=[], help="folder of task YAMLs for --task"
    )
    group.add_argument("--id-field", help="the question id field (default id / document index)")
    group.add_argument("--question-field", help="--questions: the question field (question)")
    group.add_argument("--answer-field", help="--questions: the gold answer field (answer)")
    group.add_argument("--choices-field", help="--questions: the options field (choices)")
    group.add_argument(
        "--answer-type",
        choices=ANSWER_TYPES,
        help="how answers are asked for and checked (default: from the questions)",
    )


def _source(args: argparse.Namespace) -> QuestionSource | None:
    """The question source the flags name; None where the records' benchmarks name it (one of
    the six), or `generate --benchmark` names one of the six."""
    if not (args.questions or args.task):
        if args.benchmark is not None and args.command != "generate":
            raise RBridgeError("--benchmark names the benchmark of --questions or --task")
        return None
    if args.questions and not args.benchmark:
        raise RBridgeError("--questions needs --benchmark NAME, your benchmark's name")
    return source_from_options(
        args.benchmark,
        args.questions,
        args.task,
        id_field=args.id_field,
        question_field=args.question_field,
        answer_field=args.answer_field,
        choices_field=args.choices_field,
        answer_type=args.answer_type,
        include_path=args.include_path,
    )


def _local_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("local models (hf, vllm)")
    group.add_argument("--batch-size", type=int, default=8)
    group.add_argument(
        "--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16")
    )
    group.add_argument("--device", help="hf: torch device (default: cuda if available)")
    group.add_argument(
        "--prompt-format",
        choices=("auto", "chat", "completion"),
        default="auto",
        help="auto: the chat template when the tokenizer has one",
    )
    group.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm")
    group.add_argument(
        "--skip-too-long",
        action="store_true",
        help="hf: list records longer than the model's context in OUT.skipped.jsonl and go on "
        "(default: stop with an error naming the record)",
    )


def _local_model(
    args: argparse.Namespace, *, max_new_tokens: int = 1, stop: Sequence[str] | None = None
):
    """The hf or vllm model (teacher forcing needs no new tokens: max_new_tokens=1)."""
    cached_only = _check_model_source(args.model)
    if args.backend == "hf":
        from rbridge_tasks.traces.backend_hf import HFModel

        return HFModel(
            args.model,
            model_name=args.model_name,
            dtype=args.dtype,
            device=args.device,
            batch_size=args.batch_size,
            max_new_tokens=max_new_tokens,
            stop=stop,
            prompt_format=args.prompt_format,
            local_files_only=cached_only,
        )
    from rbridge_tasks.traces.backend_vllm import VLLMModel

    return VLLMModel(
        args.model,
        model_name=args.model_name,
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_new_tokens=max_new_tokens,
        stop=stop,
        prompt_format=args.prompt_format,
        tensor_parallel_size=args.tensor_parallel_size,
    )


def _check_model_source(model: str) -> bool:
    """Whether `--model` must load from the hub's local cache only; one line at once for a path
    that is no model folder, and for a hub id neither cached nor reachable."""
    from rbridge_tasks.core.hub import hub_unreachable, model_location

    where = model_location(model, f"--model {model}")
    if where == "unavailable":
        raise RBridgeError(
            f"--model {model}: not a local folder, and the Hugging Face hub is unreachable "
            f"({hub_unreachable()}) with no copy of it in the hub cache; pass a local model folder"
        )
    return where == "cached"


def _generate(args: argparse.Namespace) -> int:
    from rbridge_tasks.traces.generate import generate_traces

    source = _source(args)
    if source is None:
        if args.benchmark is None:
            raise RBridgeError(
                "name the questions: --benchmark (one of the six), --questions FILE --benchmark "
                "NAME, or --task LM_EVAL_TASK"
            )
        source = QuestionSource(args.benchmark)
    template = None
    if args.prompt_template is not None:
        if args.prompt == "paper":
            raise RBridgeError("--prompt-template replaces the prompt; drop --prompt paper")
        template = _read_template(args.prompt_template)
    questions = source.load(args.data_dir)
    if args.category:
        if args.benchmark != "mmlu_pro":
            raise RBridgeError("--category applies to mmlu_pro only")
        known = {q.extra.get("category") for q in questions}
        unknown = sorted(set(args.category) - known)
        if unknown:
            raise RBridgeError(f"unknown MMLU-Pro categories {unknown}; known: {sorted(known)}")
        questions = [q for q in questions if q.extra.get("category") in args.category]
    if args.ids:
        wanted = list(dict.fromkeys(i.strip() for i in args.ids.split(",") if i.strip()))
        by_id = {q.id: q for q in questions}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise RBridgeError(f"--ids: not {source.benchmark} question ids: {missing[:5]}")
        questions = [by_id[i] for i in wanted]
    if args.limit is not None:
        questions = questions[: args.limit]
    if args.backend == "openai":
        backend = _openai_backend(args)
    else:
        backend = _local_model(args, max_new_tokens=args.max_new_tokens, stop=args.stop)
    summary = generate_traces(
        questions,
        backend,
        args.out,
        backend_label=args.backend,
        only_correct=args.only_correct,
        humaneval_timeout=args.humaneval_timeout,
        progress=not args.no_progress,
        prompt_style="template" if template is not None else args.prompt,
        prompt_template=template,
        skip_too_long=args.skip_too_long,
    )
    skipped = _skipped(summary.skipped)
    print(
        f"{args.out}: {summary.written} new trace(s) ({summary.correct} correct), "
        f"{summary.already_done} already done, skipped: {skipped}"
    )
    return 0


def _read_template(path: str) -> str:
    from rbridge_tasks.core.jsonl import read_text

    template = read_text(path)
    if "{question}" not in template:
        raise RBridgeError(f"--prompt-template {path}: the template has no {{question}} in it")
    return template


def _openai_backend(args: argparse.Namespace):
    from rbridge_tasks.traces.backend_openai import OpenAICompatibleBackend, RetryPolicy
    from rbridge_tasks.traces.completions import COMPLETION_STOPS

    api_key = os.environ.get(args.api_key_env)
    if not api_key and args.base_url == DEFAULT_OPENAI_URL:
        raise RBridgeError(f"the OpenAI API needs a key: set ${args.api_key_env}")
    stop = (
        args.stop
        if args.stop is not None
        else (COMPLETION_STOPS if args.api == "completions" else ())
    )
    backend = OpenAICompatibleBackend(
        args.model,
        args.base_url,
        api=args.api,
        api_key=api_key,
        max_new_tokens=args.max_new_tokens,
        stop=stop,
        concurrency=args.concurrency,
        requests_per_minute=args.requests_per_minute,
        retry=RetryPolicy(args.max_retries, args.backoff_base, args.backoff_cap),
        timeout=args.timeout,
    )
    backend.check_reachable()
    return backend


def _confidences(args: argparse.Namespace) -> int:
    from rbridge_tasks.traces.confidences import add_confidences

    summary = add_confidences(
        args.input,
        args.output,
        _local_model(args),
        context=args.context,
        data_dir=args.data_dir,
        source=_source(args),
        limit=args.limit,
        progress=not args.no_progress,
        skip_too_long=args.skip_too_long,
    )
    print(
        f"{args.output}: {summary.written} trace(s) with confidences from {args.model}, "
        f"{summary.already_done} already done, skipped: {_skipped(summary.skipped)}"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from rbridge_tasks.traces.importers import import_released, import_text_traces

    if args.inspect:
        from rbridge_tasks.records.released import ReleasedMapping, inspect_released

        if args.format != "released":
            raise RBridgeError("--inspect applies to --format released only")
        print(inspect_released(args.source, ReleasedMapping.load(args.mapping)))
        return 0
    if args.out is None:
        raise RBridgeError("rbridge traces import needs --out FILE")
    if args.format == "released":
        if args.benchmark is None:
            raise RBridgeError("--format released needs --benchmark")
        result = import_released(
            args.source, args.benchmark, args.mapping, only_correct=args.only_correct
        )
    else:
        result = import_text_traces(
            args.format,
            args.source,
            data_dir=args.data_dir,
            benchmark=args.benchmark,
            author_model=args.author_model,
            generation=args.generation,
            id_field=args.id_field,
            text_field=args.text_field,
            answer_field=args.answer_field,
            ids_are_row_indexes=args.ids_are_row_indexes,
            only_correct=args.only_correct,
            humaneval_timeout=args.humaneval_timeout,
        )
    write_traces(args.out, result.records)
    skipped = _skipped(result.skipped)
    text_only = sum(not r.has_tokens for r in result.records)
    hint = (
        f"; {text_only} are text-only: add confidences with `rbridge traces confidences`"
        if text_only
        else ""
    )
    print(f"{args.out}: {len(result.records)} trace(s), skipped: {skipped}{hint}")
    return 0


def _skipped(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[reason]} {reason}" for reason in sorted(counts)) or "none"


def _validate(args: argparse.Namespace) -> int:
    from rbridge_tasks.traces.stats import format_summary
    from rbridge_tasks.traces.validate import LOW_COVERAGE, SHOWN_IDS, validate_pack

    report = validate_pack(
        args.path, data_dir=args.data_dir, text_only=args.text_only, source=_source(args)
    )
    failures = report.failures(min_coverage=args.min_coverage, strict=args.strict)
    if args.json:
        print(json.dumps({**report.to_json(), "failures": failures}, indent=2))
    else:
        for b in report.benchmarks:
            print(
                f"{b.benchmark}: {b.stats['records']} trace(s) for {b.questions} questions "
                f"(coverage {b.coverage:.2%})"
            )
            print(format_summary(b.stats))
            for problem, ids in b.warnings.items():
                print(f"  warning: {problem}: {len(ids)} record(s), e.g. ids {ids[:SHOWN_IDS]}")
            if args.min_coverage is None and b.low_coverage:
                print(
                    f"  warning: coverage {b.coverage:.2%} is below {LOW_COVERAGE:.0%} of the "
                    "benchmark's questions (pass --min-coverage F to set your own bar)"
                )
        print(
            "FAILED: " + "; ".join(failures)
            if failures
            else f"OK: {args.path} is a valid trace pack"
        )
    return 1 if failures else 0


def _stats(args: argparse.Namespace) -> int:
    from rbridge_tasks.traces.stats import format_summary, summarise_by_benchmark

    results = {
        path: summarise_by_benchmark(read_pack(path, require_tokens=False)) for path in args.paths
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for path, by_benchmark in results.items():
        print(path)
        for benchmark, summary in by_benchmark.items():
            print(f" {benchmark}:")
            print(format_summary(summary, indent="   "))
    return 0
