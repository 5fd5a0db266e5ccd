"""Finding a benchmark's trace records where `--metadata traces=...` points: a trace file
(records of other benchmarks are skipped, so one file serves the `rbridge` group), a folder of
`<benchmark>.jsonl[.gz]` files, a local copy of the released dataset, or (without it) the
released traces from the hub."""

from __future__ import annotations

from pathlib import Path

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.records.files import benchmark_file, read_traces
from rbridge_tasks.records.released import ReleasedMapping, fetch_released, read_released
from rbridge_tasks.records.schema import TraceRecord


def find_records(
    traces: str | None, benchmark: str, released_mapping: str | None = None
) -> tuple[list[TraceRecord], str]:
    """The benchmark's trace records and a description of where they came from.

    `traces` may be a trace file (records of other benchmarks are skipped, so one file can serve
    the whole `rbridge` group), a folder with `<benchmark>.jsonl[.gz]` files, or a local copy of
    the released dataset; without it the released traces are fetched from the hub.
    `released_mapping` is a `ReleasedMapping` file for a released layout that differs.

    Raises
    ------
    RBridgeError
        `traces` does not exist, a folder holds neither the benchmark's file nor a released
        layout, or a trace file has no record of the benchmark.
    """
    mapping = ReleasedMapping.load(released_mapping)
    if traces is None:
        root = fetch_released(benchmark)
        return read_released(root, benchmark, mapping), f"{root} (released traces)"
    path = Path(traces).expanduser().resolve()
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
