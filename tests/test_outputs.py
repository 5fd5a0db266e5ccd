"""File-system faults on outputs, through the `rbridge` command line: an --out-dir that is a file,
a parent that is a file, an output that is a folder, a read-only file system and a full disk
(real tmpfs mounts). Each is one line naming the path, exit code 2, no traceback, and nothing
already written is lost."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from helpers import fill, tmpfs

from rbridge_tasks.cli import main as rbridge_main


def run(capsys, *argv: str) -> tuple[int, str]:
    code = rbridge_main(list(argv))
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) <= 1, err
    return code, err.strip()


def table(path: Path, rows: int = 3, padding: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Model,GSM8K,Note"] + [f"m{i},0.{i + 1},{'x' * padding}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def import_table(capsys, source: Path, out: Path) -> tuple[int, str]:
    return run(
        capsys, "predict", "import-table", str(source), "--out-dir", str(out),
        "--metric", "GSM8K=gsm8k:exact_match", "--model-column", "Model", "--meta", "Note=note",
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture()
def generate(capsys, data_dir):
    """`rbridge traces generate`, which fails on its output before sending any request: the
    socket only listens, so that the backend's start-up check finds something there."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"

        def generate_to(out: Path) -> tuple[int, str]:
            return run(
                capsys, "traces", "generate", "--benchmark", "gsm8k", "--backend", "openai",
                "--model", "m", "--base-url", url, "--data-dir", str(data_dir), "--limit", "1",
                "--no-progress", "--out", str(out),
            )  # fmt: skip

        yield generate_to


def test_an_out_dir_that_is_a_file(tmp_path, capsys):
    source, out = table(tmp_path / "t.csv"), tmp_path / "out"
    out.write_text("keep me\n")
    code, err = import_table(capsys, source, out)
    assert code == 2
    assert err == (
        f"rbridge predict: error: {out}/m0: Not a directory (a folder on this path is a file)"
    )
    assert out.read_text() == "keep me\n"


def test_a_parent_that_is_a_file(tmp_path, capsys, generate):
    source, parent = table(tmp_path / "t.csv"), tmp_path / "parent"
    parent.write_text("keep me\n")
    code, err = import_table(capsys, source, parent / "out")
    assert code == 2
    assert err.startswith(f"rbridge predict: error: {parent}/out")
    assert err.endswith(": Not a directory (a folder on this path is a file)")
    code, err = generate(parent / "t.jsonl")
    assert code == 2
    assert err == (
        f"rbridge traces: error: {parent}: File exists (this exists and is not a folder)"
    )
    assert parent.read_text() == "keep me\n"


def test_an_output_that_is_a_folder(tmp_path, capsys, generate):
    source, out = table(tmp_path / "t.csv"), tmp_path / "out"
    target = out / "m0" / "results_t_row00000.json"
    target.mkdir(parents=True)
    code, err = import_table(capsys, source, out)
    assert code == 2
    assert (
        err
        == f"rbridge predict: error: {target}: Is a directory (this is a folder; give a file path)"
    )
    assert [p.name for p in out.rglob("*")] == ["m0", "results_t_row00000.json"]  # no temp file
    folder = tmp_path / "traces.jsonl"
    folder.mkdir()
    code, err = generate(folder)
    assert code == 2
    assert (
        err
        == f"rbridge traces: error: {folder}: Is a directory (this is a folder; give a file path)"
    )


def test_a_read_only_file_system(tmp_path, capsys, generate):
    source = table(tmp_path / "t.csv")
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        code, err = import_table(capsys, source, ro / "out")
        assert code == 2
        assert err == (
            f"rbridge predict: error: {ro}/out: Read-only file system (the file system is "
            "read-only; choose another path)"
        )
        code, err = generate(ro / "t.jsonl")
        assert code == 2
        assert err.startswith(f"rbridge traces: error: {ro}/t.jsonl: Read-only file system")
        assert os.listdir(ro) == []


def test_a_full_disk_keeps_the_previous_outputs(tmp_path, capsys):
    with tmpfs(tmp_path / "disk") as disk:
        out = disk / "out"
        code, err = import_table(capsys, table(tmp_path / "t.csv"), out)
        assert code == 0, err
        before = snapshot(out)
        assert len(before) == 3
        fill(disk)
        code, err = import_table(capsys, table(tmp_path / "t.csv", rows=40, padding=2000), out)
        assert code == 2
        assert err.startswith(f"rbridge predict: error: {out}/m")
        assert err.endswith(
            "No space left on device (the disk is full; free space and run again (finished "
            "work is kept))"
        )
        assert snapshot(out) == before  # old files intact, no temporary files left behind


@pytest.mark.parametrize("name", ["fit.json", "fit.md"])
def test_predict_outputs_name_the_file(tmp_path, capsys, name):
    """`--out-dir` of fit: the report files are written atomically too."""
    (tmp_path / "out" / name).mkdir(parents=True)
    results = tmp_path / "runs"
    code, err = import_table(capsys, table(tmp_path / "t.csv", rows=4), results)
    assert code == 0, err
    code, err = run(
        capsys, "predict", "fit", "--results", str(results), "--proxy-task", "gsm8k",
        "--proxy-metric", "exact_match", "--target-task", "gsm8k", "--target-metric",
        "exact_match", "--join-on", "model", "--form", "linear", "--n-boot", "10",
        "--no-plot", "--quiet", "--out-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2
    last = err.splitlines()[-1]  # after the fit's own warnings
    assert last.startswith(f"rbridge predict: error: {tmp_path / 'out' / name}: Is a directory")
