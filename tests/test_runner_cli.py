"""The README's commands as a new user runs them without the hub: one line on stderr, exit 2.

Every command runs by subprocess, as typed, with the hub switched off (HF_HUB_OFFLINE=1) or
unreachable (HF_ENDPOINT at a closed local port, offline variables unset).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rbridge_tasks import __version__
from rbridge_tasks.harness.options import METADATA_KEYS

README = Path(__file__).resolve().parents[1] / "README.md"


def setup_commands() -> list[list[str]]:
    """The `rbridge eval` commands of the README's "Set up" section, as written."""
    section = README.read_text(encoding="utf-8").split("## Set up")[1].split("\n## ")[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("&&")[-1].strip()
            if command.startswith("rbridge eval "):
                commands.append(shlex.split(command)[1:])
    return commands


README_COMMANDS = setup_commands()
HUB_ID = "org/not-cached-model"  # passes the local checks; the hub check comes last
README_MAIN = README_COMMANDS[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(argv: list[str], cwd, *, offline: bool = True, program: str = "rbridge"):
    env = dict(os.environ)
    if not offline:
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(name, None)
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
    command = [sys.executable, "-m", "rbridge_tasks.cli"] if program == "rbridge" else [program]
    # the timeout only guards against a hang (hub retries would take minutes)
    return subprocess.run(
        [*command, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def one_error_line(result, prefix: str = "rbridge eval: error: ") -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(prefix)
    return lines[0]


@pytest.mark.parametrize("model", ["hf-rbridge", "hf"])
@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "no-connection"])
def test_readme_main_command_says_what_to_pass(tmp_path, offline, model):
    argv = [model if a == "hf-rbridge" else a for a in README_MAIN]
    assert "pretrained=EleutherAI/pythia-160m" in argv
    line = one_error_line(run(argv, tmp_path, offline=offline))
    assert "--metadata traces=" in line and "data_dir=" in line
    assert "pretrained=DIR" in line and "EleutherAI/pythia-160m" in line
    assert "HF_HUB_OFFLINE=1" in line if offline else "no connection to 127.0.0.1" in line
    assert not (tmp_path / "results").exists()


def test_every_setup_command_fails_in_one_line_without_the_hub(tmp_path):
    assert len(README_COMMANDS) == 3
    for argv in README_COMMANDS:  # the offline one as written: FILE and DIR do not exist here
        one_error_line(run(argv, tmp_path))


def test_errors_after_the_model_loads_are_one_line_too(tmp_path, gpt2_dir, data_dir):
    """Local inputs pass the hub check; a bad one found while the task loads is the one error."""
    (tmp_path / "data").mkdir()  # exists, but holds no gsm8k/test.jsonl
    result = run(
        [
            "eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={gpt2_dir}",
            "--tasks",
            "rbridge_gsm8k",
            "--device",
            "cpu",
            "--metadata",
            f"traces={data_dir / 'traces_gpt4o_mini_rereading'}",
            f"data_dir={tmp_path / 'data'}",
        ],
        tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("rbridge eval: error: ")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--tasks", "rbridge_gsm8kk"], "did you mean rbridge_gsm8k?"),
        (["--tasks", "rbridge_gsm8k", "--limit", "0"], "--limit 0 scores nothing"),
        (
            ["--tasks", "rbridge_gsm8k", "--metadata", "tokenizer=gpt2"],
            "--metadata tokenizer=gpt2 differs from the model's tokenizer",
        ),
        (
            ["--tasks", "rbridge_gsm8k", "--metadata", "traces=t.jsonl"],
            "--metadata traces=t.jsonl: no such file or folder",
        ),
        (
            ["--tasks", "rbridge_gsm8k", "--metadata", "traces=.", "data_dir=."],
            "--model_args pretrained=/no/such/model: no such folder",
        ),
    ],
    ids=["task-typo", "limit-0", "tokenizer", "traces-file", "model-folder"],
)
def test_early_mistakes_end_in_one_line(tmp_path, extra, expected):
    argv = ["eval", "--model", "hf", "--model_args", "pretrained=/no/such/model", *extra]
    assert expected in one_error_line(run(argv, tmp_path))


def test_plain_lm_eval_prints_our_error_as_one_line(tmp_path, gpt2_dir, data_dir):
    tasks = run(["tasks-path"], tmp_path).stdout.strip()
    result = run(
        [
            "--model",
            "hf",
            "--model_args",
            f"pretrained={gpt2_dir}",
            "--device",
            "cpu",
            "--include_path",
            tasks,
            "--tasks",
            "rbridge_gsm8k",
            "--metadata",
            f"data_dir={data_dir}",
        ],
        tmp_path,
        program=os.path.join(os.path.dirname(sys.executable), "lm_eval"),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("lm_eval: error: no --metadata traces")
    assert "--metadata traces=FILE" in errors[0]


def test_version_and_eval_help(tmp_path):
    result = run(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith(f"rbridge {__version__} (lm-eval ")
    result = run(["eval", "--help"], tmp_path)
    assert result.returncode == 0
    epilog = result.stdout.split("rBridge (all lm-eval flags above work unchanged):")[1]
    names = ("rbridge_gsm8k", "rbridge_humaneval", "hf-rbridge", "vllm-rbridge", *METADATA_KEYS)
    assert all(name in epilog for name in names)


def test_every_installed_task_passes_the_name_check(tmp_path):
    """Task names come from the installed YAMLs, so new ones (the baselines group) are known."""
    for task in ("rbridge", "rbridge_baselines", "rbridge_baselines_gsm8k"):
        argv = ["eval", "--model", "hf", "--model_args", f"pretrained={HUB_ID}"]
        line = one_error_line(run([*argv, "--tasks", task], tmp_path))
        assert "no such task" not in line and "hub is unreachable" in line


def test_a_misspelt_lm_eval_task_gets_the_closest_name(tmp_path, gpt2_dir):
    argv = ["eval", "--model", "hf", "--model_args", f"pretrained={gpt2_dir}", "--tasks", "gsm8kk"]
    assert "gsm8kk (did you mean gsm8k?)" in one_error_line(run(argv, tmp_path))


@pytest.fixture(scope="module")
def small_pack(tmp_path_factory, frontier_dir) -> Path:
    """Two GSM8K traces (the shared `gsm8k_pack` has three)."""
    from trace_fixtures import real_texts, record, write_jsonl

    records = [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 2)]
    return write_jsonl(tmp_path_factory.mktemp("pack") / "gsm8k.jsonl", records)


def eval_argv(model_dir, *extra: str, model: str = "hf-rbridge") -> list[str]:
    return ["eval", "--model", model, "--model_args", f"pretrained={model_dir}",
            "--device", "cpu", *extra]  # fmt: skip


def test_an_output_path_that_cannot_be_created_stops_before_the_model_loads(
    tmp_path, small_pack, data_dir
):
    (tmp_path / "file").write_text("x")
    meta = ["--metadata", f"traces={small_pack}", f"data_dir={data_dir}"]
    for output in (tmp_path / "file" / "results", tmp_path / "file"):
        argv = eval_argv(HUB_ID, "--tasks", "rbridge_gsm8k", *meta,
                         "--output_path", str(output))  # fmt: skip
        line = one_error_line(run(argv, tmp_path))
        assert f"--output_path {output}: the results could not be written: " in line
        assert f"{tmp_path / 'file'} is a file, not a folder" in line


def test_a_read_only_output_path_stops_before_the_model_loads(tmp_path, small_pack, data_dir):
    from helpers import tmpfs

    with tmpfs(tmp_path / "ro", read_only=True) as disk:
        argv = eval_argv(HUB_ID, "--tasks", "rbridge_gsm8k", "--metadata",
                         f"traces={small_pack}", f"data_dir={data_dir}",
                         "--output_path", str(disk / "results"))  # fmt: skip
        line = one_error_line(run(argv, tmp_path))
    assert f"{disk} is on a read-only file system" in line


def test_results_lm_eval_could_not_save_fail_the_run(tmp_path, gpt2_dir, small_pack, data_dir):
    """A disk that fills during the run: lm-eval only logs `Could not save results`."""
    from helpers import fill, tmpfs

    with tmpfs(tmp_path / "disk", size="64k") as disk:
        fill(disk)
        argv = eval_argv(gpt2_dir, "--tasks", "rbridge_gsm8k", "--metadata",
                         f"traces={small_pack}", f"data_dir={data_dir}",
                         "--output_path", str(disk / "results"))  # fmt: skip
        result = run(argv, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rbridge eval: error: --output_path {disk / 'results'}: lm-eval ")
    assert "could not save the results there" in last


@pytest.mark.parametrize("kind", ["empty-folder", "file", "bad-config"])
def test_a_path_that_is_no_model_folder_is_one_line(tmp_path, kind):
    path = tmp_path / "model"
    if kind == "file":
        path.write_text("weights?")
    else:
        path.mkdir()
        (path / "notes.txt").write_text("not a model")
        if kind == "bad-config":
            (path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    line = one_error_line(run(eval_argv(path, "--tasks", "rbridge_gsm8k"), tmp_path))
    assert line.startswith(f"rbridge eval: error: --model_args pretrained={path}: ")
    expected = {
        "empty-folder": "not a model folder (no config.json; it holds ['notes.txt'])",
        "file": "this is a file; pass the model's folder or a hub id",
        "bad-config": "its config.json cannot be read as a model's",
    }[kind]
    assert expected in line


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("vllm") is not None, reason="vLLM is installed"
)
@pytest.mark.parametrize("model", ["vllm-rbridge", "vllm"])
def test_vllm_missing_is_one_line_naming_the_extra(tmp_path, model):
    argv = eval_argv(HUB_ID, "--tasks", "rbridge_gsm8k", model=model)
    line = one_error_line(run(argv, tmp_path))
    assert f"--model {model} needs vLLM, which is not installed: pip install -e " in line
    assert '".[vllm]"' in line


@pytest.mark.parametrize(
    ("option", "closest"),
    [("tracess=t.jsonl", "traces"), ("data-dir=qs/data", "data_dir"), ("minmax_scop=x", "")],
)
def test_a_misspelt_metadata_key_is_named_before_the_hub_check(tmp_path, option, closest):
    argv = eval_argv("EleutherAI/pythia-160m", "--tasks", "rbridge_gsm8k", "--metadata", option)
    line = one_error_line(run(argv, tmp_path))
    key = option.split("=")[0]
    assert (
        f"--metadata {key}=...: unknown rBridge option; did you mean '{closest or 'minmax_scope'}'"
        in line
    )
    assert "unreachable" not in line


def test_a_partial_pack_for_the_group_names_the_tasks_it_can_run(tmp_path, small_pack, data_dir):
    for traces in (small_pack, small_pack.parent):  # a file, and a folder of <benchmark>.jsonl
        argv = eval_argv(HUB_ID, "--tasks", "rbridge", "--metadata",
                         f"traces={traces}", f"data_dir={data_dir}")  # fmt: skip
        line = one_error_line(run(argv, tmp_path))
        assert f"--tasks rbridge: --metadata traces={traces} has no traces for math500, " in line
        assert "(it has gsm8k); run the benchmarks it has with --tasks rbridge_gsm8k" in line


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_a_bad_logits_budget_is_one_line(tmp_path, gpt2_dir, value):
    args = f"pretrained={gpt2_dir},logits_budget_mb={value}"
    argv = ["eval", "--model", "hf-rbridge", "--model_args", args, "--tasks", "rbridge_gsm8k"]
    line = one_error_line(run(argv, tmp_path))
    assert f"--model_args logits_budget_mb={value}: expected a positive whole number" in line


@pytest.mark.parametrize("program", ["lm_eval", "lm-eval"])
def test_a_misspelt_task_under_plain_lm_eval_is_one_line(tmp_path, program):
    """Our package is not imported before lm-eval rejects the name; the installed
    `rbridge-lm-eval-hook.pth` makes that one line too (lm-eval's own names stay lm-eval's)."""
    tasks = run(["tasks-path"], tmp_path).stdout.strip()
    argv = ["--model", "hf", "--model_args", f"pretrained={HUB_ID}", "--include_path", tasks,
            "--tasks"]  # fmt: skip
    executable = os.path.join(os.path.dirname(sys.executable), program)
    result = run([*argv, "rbridge_gsm8kk"], tmp_path, program=executable)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "lm_eval: error: --tasks rbridge_gsm8kk: no such task; did you mean rbridge_gsm8k?"
    )
    assert "Traceback" not in result.stderr
    stock = run([*argv, "gsm8kk"], tmp_path, program=executable)
    assert stock.returncode == 1 and "ValueError: Tasks not found: gsm8kk" in stock.stderr
