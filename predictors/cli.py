"""`rbridge predict {fit,evaluate,rank,leaderboard,gate,compare,import-table}`.

Each command prints Markdown (or JSON with --json) and, with --out-dir, writes
`<command>.json`, `<command>.md` and, where there is a chart, `<command>.png`. Bad input raises
RBridgeError, which `rbridge` prints as one line with exit code 2; `gate` exits 1 when it fails.

Examples:
  rbridge predict fit --results runs/ --proxy-task rbridge_gsm8k --proxy-metric rbridge_nll \\
      --target-task gsm8k --target-metric exact_match --target-filter strict-match \\
      --proxy-where role=proxy --target-where role=target --join-on recipe --out-dir out/fit
  rbridge predict leaderboard --fit out/fit/fit.json --results new_runs/ --out-dir out/lb
  rbridge predict gate --fit out/fit/fit.json --baseline base/ --candidate new/
  rbridge predict import-table obsscaling.csv --model-column Model \\
      --metric GSM8K=gsm8k:exact_match --meta "Model Family=family" --out-dir imported/
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from predictors.choices import (
    DEFAULT_FORMS,
    DEFAULT_PATTERN,
    DUPLICATE_POLICIES,
    FORM_NAMES,
    GATE_RULES,
    KINDS,
    MODES,
    ROW_CHOICES,
    SELECT_NAMES,
)
from rbridge_tasks.core.errors import RBridgeError

if TYPE_CHECKING:
    import numpy as np

    from predictors.data.join import Joined, Side
    from predictors.fitting.fit import FitOptions


def _lazy(name: str) -> ModuleType:
    """`name`, imported on first use: parsing arguments (`--help`, a usage error) needs none of
    numpy, pandas, scikit-learn or matplotlib, which take seconds to import."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


commands, plots, report = (
    _lazy(f"predictors.reports.{m}") for m in ("commands", "plots", "report")
)

GATE_FAILED = 1


def main(argv: list[str]) -> int:
    """Run one command; the exit code: 0, `GATE_FAILED` for a failed gate, 2 for a usage error.

    The warnings worth acting on are printed one a line and listed in the outputs. Bad input
    raises `RBridgeError` for the `rbridge` entry point to print (exit 2).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return int(exc.code or 0)
    from predictors.data.join import RunMismatchWarning
    from predictors.fitting.estimators import ExtrapolationWarning, FitWarning, TooFewPointsWarning

    shown = (ExtrapolationWarning, TooFewPointsWarning, RunMismatchWarning, FitWarning)
    with warnings.catch_warnings(record=True) as caught:
        for category in shown:
            warnings.simplefilter("always", category)
        payload, render, chart = args.handler(args)
        png = _draw(args, chart)
    if payload is None or render is None:
        return 0
    payload["warnings"] = list(
        dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, shown))
    )
    for message in payload["warnings"]:
        print(f"rbridge predict: warning: {message}", file=sys.stderr)
    _emit(args, payload, render(payload), png)
    if args.command == "gate" and not payload["passed"]:
        return GATE_FAILED
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every command's options; builds without importing the numeric stack (`choices`), so
    `--help` and usage errors are instant."""
    parser = argparse.ArgumentParser(
        prog="rbridge predict", description="Predict large-model accuracy from proxy scores."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data, fitting, output = _data_parser(), _fit_parser(), _output_parser()
    sub.add_parser(
        "fit",
        parents=[data, fitting, output],
        help="fit proxy score -> target accuracy, save the fit",
    ).set_defaults(handler=_cmd_fit)
    evaluate = sub.add_parser(
        "evaluate",
        parents=[data, fitting, output],
        help="k-fold, leave-one-group-out, extrapolation, transfer",
    )
    evaluate.add_argument(
        "--extrapolate-fraction",
        type=float,
        default=0.2,
        help="share of best proxy scores held out (default 0.2)",
    )
    evaluate.set_defaults(handler=_cmd_evaluate)
    rank = sub.add_parser(
        "rank", parents=[data, output], help="decision accuracy, Spearman, Kendall, P(A beats B)"
    )
    rank.add_argument(
        "--bootstrap",
        choices=MODES,
        default="recipes",
        help="resample recipes (runs) or benchmark items (needs samples JSONL)",
    )
    rank.add_argument("--n-boot", type=int, default=1000)
    rank.add_argument("--alpha", type=float, default=0.1)
    rank.add_argument("--seed", type=int, default=0)
    rank.add_argument("--within", metavar="KEY", help=WITHIN_HELP)
    rank.set_defaults(handler=_cmd_rank)
    board = sub.add_parser(
        "leaderboard",
        parents=[_reuse_parser(), output],
        help="predicted target accuracy of candidate runs, best first",
    )
    board.add_argument("--results", nargs="+", required=True, help="candidate results")
    board.add_argument(
        "--label-by",
        default="model,revision",
        help="run fields naming each entry (default model,revision)",
    )
    board.set_defaults(handler=_cmd_leaderboard)
    gate = sub.add_parser(
        "gate",
        parents=[_reuse_parser(), output],
        help="exit 1 when the candidate is predicted worse, beyond the tolerance, for sure",
    )
    gate.add_argument("--baseline", nargs="+", required=True, help="baseline results (one run)")
    gate.add_argument("--candidate", nargs="+", required=True, help="new results (one run)")
    gate.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="accepted drop in predicted accuracy, a finite number >= 0 (default 0)",
    )
    gate.add_argument(
        "--rule",
        choices=GATE_RULES,
        default=GATE_RULES[0],
        help="difference (default): fail when the whole interval of the predicted "
        "difference (candidate - baseline) lies below -tolerance; candidate-interval: fail "
        "only when the baseline's prediction lies beyond the candidate's own interval by more "
        "than the tolerance (lenient; see the README)",
    )
    gate.add_argument(
        "--no-score-noise",
        action="store_true",
        help="ignore the proxy scores' own stderr in the interval",
    )
    gate.add_argument(
        "--within",
        metavar="KEY",
        help="the two runs must share this field (e.g. the token budget); the fit's ladder "
        "is scored within blocks of it",
    )
    gate.add_argument(
        "--allow-no-skill",
        action="store_true",
        help="decide even on a fit no better out of sample than predicting the mean",
    )
    gate.set_defaults(handler=_cmd_gate)
    compare = sub.add_parser(
        "compare",
        parents=[_fit_parser(), output],
        help="every proxy metric side by side: the paper's Table 2 for your ladder",
    )
    compare.add_argument("--results", nargs="+", required=True, help="results files or dirs")
    compare.add_argument("--pattern", default=DEFAULT_PATTERN)
    compare.add_argument(
        "--benchmark",
        action="append",
        required=True,
        help="NAME (proxy rbridge_NAME, target from the accuracy-targets table), "
        "NAME=PROXY_TASK or NAME=PROXY_TASK:TARGET_TASK[:METRIC[:FILTER]]; repeatable",
    )
    compare.add_argument("--proxy-where", action="append", default=[], help="FIELD=GLOB, ...")
    compare.add_argument("--target-where", action="append", default=[])
    compare.add_argument("--join-on", default="recipe", help="field(s) naming the recipes")
    compare.add_argument("--on-duplicate", choices=DUPLICATE_POLICIES, default="error")
    compare.add_argument(
        "--datadecide",
        action="store_true",
        help="also derive DataDecide's metrics from the proxy runs' samples JSONL",
    )
    compare.add_argument("--within", metavar="KEY", help=WITHIN_HELP)
    compare.set_defaults(handler=_cmd_compare)
    table = sub.add_parser(
        "import-table", help="turn a CSV/YAML accuracy table into lm-eval results files"
    )
    table.add_argument("tables", nargs="+", help="CSV or YAML (list of records) files")
    table.add_argument("--out-dir", required=True)
    table.add_argument(
        "--metric",
        action="append",
        required=True,
        help="COLUMN=TASK:METRIC[:higher|:lower], repeatable",
    )
    table.add_argument("--model-column", help="model id column (default: the file name)")
    table.add_argument("--revision-column")
    table.add_argument(
        "--meta",
        action="append",
        default=[],
        help="COLUMN=KEY: copy a column into the metadata, repeatable",
    )
    table.add_argument(
        "--set",
        action="append",
        default=[],
        dest="constants",
        help="KEY=VALUE metadata for every row, repeatable",
    )
    table.add_argument(
        "--rows",
        choices=ROW_CHOICES,
        default="all",
        help="'last' keeps only the final row (e.g. the last checkpoint)",
    )
    table.add_argument("--where", action="append", default=[], help="COLUMN=GLOB or COLUMN<=N")
    table.set_defaults(handler=_cmd_import_table)
    return parser


def _data_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("data")
    g.add_argument("--results", nargs="+", default=[], help="results files or directories")
    g.add_argument(
        "--pattern",
        default=DEFAULT_PATTERN,
        help=f"file glob inside directories (default {DEFAULT_PATTERN})",
    )
    g.add_argument("--manifest", help="CSV with path,role,key[,group] instead of --results")
    g.add_argument("--proxy-task", required=True, help="task name or glob (averaged)")
    g.add_argument("--proxy-metric", required=True)
    g.add_argument(
        "--target-task",
        help="task, glob or comma list (averaged), or a benchmark name; default: the "
        "accuracy target of an rbridge_<benchmark> proxy task (predictors/data/targets.py)",
    )
    g.add_argument(
        "--target-metric", help="default: the accuracy-targets table's metric for the task"
    )
    for side in ("proxy", "target"):
        g.add_argument(f"--{side}-filter", help="lm-eval filter name (needed if several)")
        g.add_argument(
            f"--{side}-where",
            action="append",
            default=[],
            help="FIELD=GLOB, FIELD!=GLOB or FIELD<=N, repeatable",
        )
        g.add_argument(
            f"--{side}-higher-is-better",
            choices=("yes", "no"),
            help="override or supply the metric's direction",
        )
    g.add_argument("--where", action="append", default=[], help="condition for both sides")
    g.add_argument("--join-on", help="field(s) pairing proxy and target runs (default recipe)")
    g.add_argument("--group-by", help="field naming groups (family, corpus) for LOGO/transfer")
    g.add_argument("--on-duplicate", choices=DUPLICATE_POLICIES, default="error")
    g.add_argument("--intermediate-metric", help="target-scale metric for --form ladder")
    g.add_argument("--intermediate-task", help="its task (default: the target task)")
    return p


WITHIN_HELP = (
    "also score decisions only within blocks of this field of the proxy runs (e.g. the token "
    "budget or model size): pairs across blocks are left out"
)


def _fit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("fit")
    g.add_argument(
        "--form",
        choices=["auto", *FORM_NAMES, "ladder"],
        default="auto",
        help="fit form; auto = the candidate with the best --select (default)",
    )
    g.add_argument(
        "--forms",
        default=",".join(DEFAULT_FORMS),
        help=f"candidates for auto (default {','.join(DEFAULT_FORMS)})",
    )
    g.add_argument(
        "--select",
        choices=SELECT_NAMES,
        default=SELECT_NAMES[0],
        help="auto's criterion: cv_r2 (default; pooled held-out R2, mean over CV repeats), "
        "cv_mae, or train_r2 (the paper's protocol: in-sample R2, overfits)",
    )
    g.add_argument("--folds", type=int, default=5)
    g.add_argument(
        "--cv-repeats",
        type=int,
        default=5,
        help="k-fold CV repeated over this many shuffles (seeds seed, seed+1, ...; default 5)",
    )
    g.add_argument(
        "--allow-turning",
        action="store_true",
        help="fit the quadratic free, as the paper does (it may turn inside the fitted range; "
        "flagged); default: kept monotone over the fitted range",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--chance", type=float, default=0.0, help="sigmoid floor (e.g. 0.25)")
    g.add_argument("--ceiling", type=float, default=1.0, help="sigmoid ceiling")
    g.add_argument("--n-boot", type=int, default=1000)
    g.add_argument("--alpha", type=float, default=0.1, help="interval is 1 - alpha")
    g.add_argument("--interval", choices=KINDS, default="prediction")
    return p


def _reuse_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--fit", required=True, help="fit.json written by `rbridge predict fit`")
    p.add_argument("--pattern", default=DEFAULT_PATTERN)
    p.add_argument("--where", action="append", default=[], help="condition on candidate runs")
    p.add_argument(
        "--target-where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="the targets you mean to predict (e.g. size=1.4B), checked against the fit's "
        "target runs; refused when they differ",
    )
    p.add_argument(
        "--extrapolate-target",
        action="store_true",
        help="predict for a --target-where the fit's targets do not match (flagged)",
    )
    return p


def _output_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument("--out-dir", help="write <command>.json, .md and .png here")
    g.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--no-plot", action="store_true")
    return p


# (payload, Markdown renderer, chart drawer); the renderer runs once warnings are collected.
Result = tuple[
    dict[str, Any] | None, Callable[[dict[str, Any]], str] | None, Callable[[Path], Any] | None
]


def _cmd_fit(args: argparse.Namespace) -> Result:
    joined = _joined(args)
    payload = commands.fit_payload(joined, _options(args), progress=not args.quiet)
    return payload, report.fit_markdown, _fit_chart(payload, joined, "points")


def _cmd_evaluate(args: argparse.Namespace) -> Result:
    joined = _joined(args)
    payload = commands.evaluate_payload(joined, _options(args), args.extrapolate_fraction)
    return payload, report.evaluate_markdown, _evaluate_chart(payload, joined, args)


def _cmd_rank(args: argparse.Namespace) -> Result:
    joined = _joined(args, within=args.within)
    payload = commands.rank_payload(
        joined,
        mode=args.bootstrap,
        n_boot=args.n_boot,
        alpha=args.alpha,
        seed=args.seed,
        progress=not args.quiet,
    )
    return payload, report.rank_markdown, None


def _cmd_leaderboard(args: argparse.Namespace) -> Result:
    from predictors.data.ingest import load_results
    from predictors.data.join import select_scores
    from predictors.fitting.fitfile import load_fit

    fit = load_fit(args.fit)
    candidates = select_scores(
        load_results(args.results, args.pattern), _candidate_side(fit.proxy, args.where)
    )
    payload = commands.leaderboard_payload(
        fit,
        candidates,
        label_by=args.label_by,
        target_where=tuple(args.target_where),
        extrapolate_target=args.extrapolate_target,
    )

    def chart(path: Path) -> Any:
        entries = payload["entries"]
        values = {k: [e[k] for e in entries] for k in ("predicted", "lower", "upper")}
        return plots.plot_leaderboard(
            path,
            labels=[e["label"] for e in entries],
            predicted=_array(values["predicted"]),
            lower=_array(values["lower"]),
            upper=_array(values["upper"]),
            extrapolated=[e["extrapolated"] for e in entries],
            x_label=f"predicted {fit.target.task} {fit.target.metric}",
            title=f"Leaderboard from {fit.proxy.task} {fit.proxy.metric} ({payload['form']} fit)",
            fitted_range=tuple(payload["fitted_target_range"]),
        )

    return payload, report.leaderboard_markdown, chart


def _cmd_gate(args: argparse.Namespace) -> Result:
    from predictors.data.ingest import load_results
    from predictors.data.join import select_scores
    from predictors.fitting.fitfile import load_fit

    fit = load_fit(args.fit)
    side = _candidate_side(fit.proxy, args.where)
    baseline = select_scores(load_results(args.baseline, args.pattern), side)
    candidate = select_scores(load_results(args.candidate, args.pattern), side)
    payload = commands.gate_payload(
        fit,
        baseline,
        candidate,
        tolerance=args.tolerance,
        rule=args.rule,
        score_noise=not args.no_score_noise,
        within=args.within,
        allow_no_skill=args.allow_no_skill,
        target_where=tuple(args.target_where),
        extrapolate_target=args.extrapolate_target,
    )
    return payload, report.gate_markdown, None


def _cmd_compare(args: argparse.Namespace) -> Result:
    from predictors.data import datadecide
    from predictors.data.ingest import load_results
    from predictors.reports import compare

    tidy = load_results(args.results, args.pattern)
    benchmarks = [compare.Benchmark.parse(b, tuple(args.target_where)) for b in args.benchmark]
    notes: list[str] = []
    if args.datadecide:
        for bench in benchmarks:
            tidy, found = datadecide.add_derived(tidy, bench.proxy_task)
            notes += found
    payload = compare.compare_payload(
        tidy,
        benchmarks,
        proxy_where=tuple(args.proxy_where),
        on=args.join_on,
        on_duplicate=args.on_duplicate,
        options=_options(args),
        notes=notes,
        within=args.within,
    )
    chart = (lambda path: compare.compare_chart(payload, path)) if payload["metrics"] else None
    return payload, compare.compare_markdown, chart


def _cmd_import_table(args: argparse.Namespace) -> Result:
    from predictors.data.tables import MetricColumn, TableSpec, plan_results, write_results

    spec = TableSpec(
        metrics=[MetricColumn.parse(m) for m in args.metric],
        model_column=args.model_column,
        revision_column=args.revision_column,
        metadata_columns=dict(_pair(m, "--meta") for m in args.meta),
        constants=dict(_pair(c, "--set") for c in args.constants),
        rows=args.rows,
        where=tuple(args.where),
    )
    planned, notes = plan_results(args.tables, spec, args.out_dir)
    write_results(planned)
    for note in notes:
        print(note, file=sys.stderr)
    print(f"wrote {len(planned)} results file(s) under {args.out_dir}")
    return None, None, None


def _joined(args: argparse.Namespace, within: str | None = None) -> Joined:
    from predictors.data.ingest import load_results
    from predictors.data.join import Side, join, load_manifest

    proxy_where, target_where = list(args.proxy_where), list(args.target_where)
    on, group_by = args.join_on or "recipe", args.group_by
    if args.manifest:
        if args.results:
            raise RBridgeError("give either --manifest or --results, not both")
        tidy = load_manifest(args.manifest)
        proxy_where.append("role=proxy")
        target_where.append("role=target")
        on = args.join_on or "manifest_key"
        has_group = any("manifest_group" in m for m in tidy["metadata"])
        group_by = group_by or ("manifest_group" if has_group else None)
    elif args.results:
        tidy = load_results(args.results, args.pattern)
    else:
        raise RBridgeError("no input: pass --results FILES_OR_DIRS or --manifest CSV")
    proxy = Side(
        "proxy",
        args.proxy_task,
        args.proxy_metric,
        args.proxy_filter,
        tuple(proxy_where + args.where),
        _yes_no(args.proxy_higher_is_better),
    )
    target_task, target_metric, target_filter = _target_defaults(args)
    target = Side(
        "target",
        target_task,
        target_metric,
        target_filter,
        tuple(target_where + args.where),
        _yes_no(args.target_higher_is_better),
    )
    intermediate = None
    if args.intermediate_metric:
        intermediate = Side(
            "intermediate",
            args.intermediate_task or target_task,
            args.intermediate_metric,
            None,
            target.where,
            None,
        )
    return join(
        tidy,
        proxy,
        target,
        on=on,
        group_by=group_by,
        on_duplicate=args.on_duplicate,
        intermediate=intermediate,
        within=within,
    )


def _target_defaults(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """--target-task/-metric/-filter, the gaps filled from the accuracy-targets table."""
    from predictors.data.targets import lookup

    entry = lookup(args.target_task or args.proxy_task)
    if entry is None and not (args.target_task and args.target_metric):
        raise RBridgeError(
            "pass --target-task and --target-metric (the accuracy-targets table knows "
            "gsm8k, math500, arc_challenge, mmlu_pro, csqa, humaneval and their rbridge_ tasks)"
        )
    if entry is not None and args.target_task in (None, entry.benchmark, entry.task):
        task = entry.task
    else:
        task = args.target_task
    if args.target_metric is not None:
        return task, args.target_metric, args.target_filter
    return task, entry.metric, args.target_filter or entry.filter


def _options(args: argparse.Namespace) -> FitOptions:
    from predictors.fitting.fit import FitOptions

    forms = tuple(f.strip() for f in args.forms.split(",") if f.strip())
    unknown = [f for f in forms if f not in FORM_NAMES]
    if unknown:
        raise RBridgeError(f"--forms: unknown form(s) {unknown}; choose from {list(FORM_NAMES)}")
    return FitOptions(
        form=args.form,
        forms=forms,
        folds=args.folds,
        repeats=args.cv_repeats,
        select=args.select,
        monotone=not args.allow_turning,
        seed=args.seed,
        chance=args.chance,
        ceiling=args.ceiling,
        n_boot=args.n_boot,
        alpha=args.alpha,
        interval=args.interval,
    )


def _fit_chart(payload: dict[str, Any], joined: Joined, source: str) -> Callable[[Path], Any]:
    def chart(path: Path) -> Any:
        points = payload[source]
        curve = payload["curve"]
        cv = [p["cv_prediction"] for p in points]
        groups = [p["group"] for p in points] if "group" in joined.pairs else None
        return plots.plot_fit(
            path,
            x=_array([p["x"] for p in points]),
            y=_array([p["y"] for p in points]),
            keys=[str(p["key"]) for p in points],
            curve_x=_array(curve["x"]),
            curve_y=_array(curve["y"]),
            band=(_array(curve["lower"]), _array(curve["upper"])),
            band_label=f"{1 - payload['interval']['alpha']:.0%} {payload['interval']['kind']} "
            "interval (bootstrap + held-out residuals)",
            cv_predictions=_array(cv),
            groups=groups,
            x_label=_axis(joined.proxy),
            y_label=_axis(joined.target),
            title=f"{payload['form']} fit: train R2 {report.fmt(payload['train_r2'], 3)}, "
            f"CV R2 {report.fmt(_chosen(payload, 'r2'), 3)}, "
            f"CV MAE {report.fmt(_chosen(payload, 'mae'), 3)} (n={len(points)})",
        )

    return chart


def _evaluate_chart(
    payload: dict[str, Any], joined: Joined, args: argparse.Namespace
) -> Callable[[Path], Any] | None:
    if not payload["cv_points"]:
        return None
    chosen = dataclasses.replace(_options(args), form=payload["chosen"])
    return _fit_chart(
        commands.fit_payload(joined, chosen, progress=not args.quiet), joined, "points"
    )


def _draw(args: argparse.Namespace, chart: Callable[[Path], Any] | None) -> Path | None:
    out_dir = getattr(args, "out_dir", None)
    if not out_dir or chart is None or args.no_plot:
        return None
    return chart(Path(out_dir) / f"{args.command}.png")


def _emit(
    args: argparse.Namespace, payload: dict[str, Any], markdown: str, png: Path | None
) -> None:
    if args.out_dir:
        base = Path(args.out_dir) / args.command
        payload["outputs"] = {
            "json": str(base.with_suffix(".json")),
            "markdown": str(base.with_suffix(".md")),
            **({"png": str(png)} if png else {}),
        }
        report.write_json(base.with_suffix(".json"), payload)
        report.write_markdown(base.with_suffix(".md"), markdown)
    print(report.to_json(payload) if args.json else markdown, end="")


def _candidate_side(side: Side, where: list[str]) -> Side:
    """The fit's proxy score, read from new runs: same task, metric, filter and direction, but
    not the fit's --proxy-where (that picked the training runs, not the candidates)."""
    from predictors.data.join import Side

    return Side(side.name, side.task, side.metric, side.filter, tuple(where), side.higher_is_better)


def _yes_no(value: str | None) -> bool | None:
    return None if value is None else value == "yes"


def _pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.rpartition("=")
    if not sep or not key:
        raise RBridgeError(f"{flag} {text!r}: expected LEFT=RIGHT")
    return key, value


def _axis(side: Side) -> str:
    arrow = "higher is better" if side.higher_is_better else "lower is better"
    return f"{side.name}: {side.task} {side.metric} ({arrow})"


def _chosen(payload: dict[str, Any], key: str) -> Any:
    return payload["protocol"]["forms"].get(payload["form"], {}).get(key)


def _array(values: list[Any]) -> np.ndarray:
    import numpy as np

    return np.array([np.nan if v is None else v for v in values], dtype=float)
