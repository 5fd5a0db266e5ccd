"""A benchmark beyond the six: questions from the user's own file, or from any lm-eval task.

The whole path a README reader follows (questions -> `rbridge traces generate` -> `validate` ->
`rbridge eval` -> `rbridge predict`), with every per-document number checked against the
independent reference (`tests/reference.py`) and, for lm-eval tasks, the proxy's context against
what lm-eval itself builds for the task.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import reference
from helpers import rbridge_eval
from lm_eval.tasks import TaskManager
from tiny_models import build_tiny_lm

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.lm_eval_source import load_lm_eval_questions
from rbridge_tasks.questions.question_file import QuestionFields, load_question_file
from rbridge_tasks.questions.source import QuestionSource
from rbridge_tasks.traces.cli import main as traces_main

TOLERANCE = 1e-5  # per document, float64 reference of a float32 pass (as test_document_mode)
PIECES_METRICS = ("rbridge_nll", "trace_nll", "trace_bpb", "rbridge_weight_sum", "trace_tokens")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def pack_records(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {row["id"]: row for row in rows if "frontier_tokens" in row}


def check_numbers(model_dir: Path, samples: list[dict], records: dict[str, dict], contexts):
    """Each sample's numbers against the reference computed over the context lm-eval would
    give (`contexts[id]`), and the document's own context equal to it."""
    assert sorted(s["doc"]["id"] for s in samples) == sorted(records)
    for sample in samples:
        doc = sample["doc"]
        context = contexts[doc["id"]]
        assert doc["prompt"] + doc.get("delimiter", " ") == context
        expected = reference.document(model_dir, context, records[doc["id"]])
        for metric in (*PIECES_METRICS, "tok_rank", "tok_entropy"):
            assert sample[metric] == pytest.approx(expected[metric], abs=TOLERANCE), (
                metric,
                doc["id"],
            )


def generate(*args: str) -> None:
    options = ["--backend", "hf", "--max-new-tokens", "24", "--dtype", "float32",
               "--device", "cpu", "--no-progress"]  # fmt: skip
    assert traces_main(["generate", *args, *options]) == 0


# -- question files ---------------------------------------------------------------------------


def test_question_file_fields_options_and_gold_forms(tmp_path):
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"meta": {"key": "a1"}, "q": "Pick the even one.", "opts": ["3", "4"], "gold": 1},
            {
                "meta": {"key": "a2"},
                "q": "Pick red.",
                "opts": {"X": "red", "Y": "blue"},
                "gold": "X",
            },
            {"meta": {"key": "a3"}, "q": "Pick blue.", "opts": ["red", "blue"], "gold": "blue"},
            {"meta": {"key": "a4"}, "q": "Pick b.", "opts": ["a", "b"], "gold": "b"},
        ],
    )
    fields = QuestionFields(id="meta.key", question="q", answer="gold", choices="opts")
    questions = load_question_file(path, "mine", fields)
    assert [q.id for q in questions] == ["a1", "a2", "a3", "a4"]
    assert [q.gold for q in questions] == ["B", "X", "B", "B"]
    assert questions[1].choices == (("X", "red"), ("Y", "blue"))
    assert {q.answer_type for q in questions} == {"choice"}
    assert all(q.benchmark == "mine" for q in questions)


def test_question_file_csv_gzip_and_answer_types(tmp_path):
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text(
        'id,question,answer\nx,"What is 2+2?\nThink.",4\ny,What is 10/4?,2.5\n', encoding="utf-8"
    )
    numbers = load_question_file(csv_path, "mine")
    assert [(q.id, q.question, q.gold) for q in numbers] == [
        ("x", "What is 2+2?\nThink.", "4"),
        ("y", "What is 10/4?", "2.5"),
    ]
    assert {q.answer_type for q in numbers} == {"number"}
    gz = tmp_path / "mine.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"question": "Simplify.", "answer": "\\\\frac{1}{2}"}\n'))
    (math,) = load_question_file(gz, "mine")
    assert (math.id, math.answer_type) == ("0", "math")  # no id field: the row index
    assert load_question_file(gz, "mine", answer_type="text")[0].answer_type == "text"
    pipes = tmp_path / "pipes.csv"
    pipes.write_text("question,choices,answer\nColour?,red | blue,blue\n", encoding="utf-8")
    (choice,) = load_question_file(pipes, "mine")
    assert (choice.choices, choice.gold) == ((("A", "red"), ("B", "blue")), "B")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "1", "question": "Q?"}\n', r"line 1, field 'answer': missing the gold answer"),
        ('{"id": "1", "question": "Q?", "answer": "1"}\n{"id": "1", "question": "R?", '
         '"answer": "2"}\n', r"line 2, id '1', field 'id': repeated question id \(also on line"),
        ('{"id": "1", "question": "Q?", "answer": "Z", "choices": ["a", "b"]}\n',
         r"line 1, field 'answer': the gold answer 'Z' is neither"),
        ("[1, 2]\n", r"line 1: expected a JSON object, got list"),
        ("", r"no questions in the file"),
        ('{"id": "1", "question": "Q?", "answer": Infinity}\n', r"line 1"),
    ],
)  # fmt: skip
def test_question_file_errors_name_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RBridgeError, match=message) as caught:
        load_question_file(path, "mine")
    assert str(path) in str(caught.value)


def test_question_file_paths_and_encodings(tmp_path):
    with pytest.raises(RBridgeError, match="is a folder; --questions takes a JSONL or CSV file"):
        load_question_file(tmp_path, "mine")
    with pytest.raises(RBridgeError, match="question file not found"):
        load_question_file(tmp_path / "nope.jsonl", "mine")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("question,answer\ncaf\xe9?,1\n".encode("latin-1"))
    with pytest.raises(RBridgeError, match=r"latin.csv, line 2: not UTF-8 text"):
        load_question_file(latin, "mine")


def test_question_source_names_are_checked():
    with pytest.raises(RBridgeError, match="one of the six built-in benchmarks"):
        QuestionSource("gsm8k", questions="q.jsonl")
    with pytest.raises(RBridgeError, match="use letters, digits"):
        QuestionSource("my bench", questions="q.jsonl")
    with pytest.raises(RBridgeError, match="not both"):
        QuestionSource("x", questions="q.jsonl", source_task="t")
    with pytest.raises(RBridgeError, match="answer_type='numbers'"):
        QuestionSource("x", questions="q.jsonl", answer_type="numbers")


def test_question_file_from_generation_to_prediction(
    tmp_path, frontier_dir, gpt2_dir, llama_dir, data_dir
):
    questions = write_jsonl(
        tmp_path / "arith.jsonl",
        [
            {"qid": f"p{i}", "problem": f"What is {i} plus {2 * i}?", "solution": str(3 * i)}
            for i in range(1, 5)
        ],
    )
    source = ["--questions", str(questions), "--benchmark", "arith", "--id-field", "qid",
              "--question-field", "problem", "--answer-field", "solution"]  # fmt: skip
    pack = tmp_path / "pack"
    generate(*source, "--model", str(frontier_dir), "--out", str(pack / "arith.jsonl"))
    records = pack_records(pack / "arith.jsonl")
    assert sorted(records) == ["p1", "p2", "p3", "p4"]  # incorrect traces are kept
    assert traces_main(["validate", str(pack), *source, "--min-coverage", "1"]) == 0

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "rbridge_arith.yaml").write_text(
        textwrap.dedent(
            f"""\
            task: rbridge_arith
            class: !function rbridge_tasks.harness.task.RBridgeTask
            metadata:
              benchmark: arith
              questions: ../arith.jsonl
              id_field: qid
              question_field: problem
              answer_field: solution
              traces: {pack}
            """
        )
    )
    contexts = {f"p{i}": f"Question: What is {i} plus {2 * i}?\nAnswer: " for i in range(1, 5)}
    scores = {}
    proxies = {"gpt2": gpt2_dir, "llama": llama_dir, "frontier": frontier_dir,
               "other": build_tiny_lm(tmp_path / "other", family="gpt2", seed=3)}  # fmt: skip
    for name, proxy in proxies.items():
        results, samples = rbridge_eval(
            tmp_path / "results" / name, "--model", "hf-rbridge",
            "--model_args", f"pretrained={proxy}", "--include_path", str(tasks),
            "--tasks", "rbridge_arith", "--metadata", f"recipe={name}",
        )  # fmt: skip
        check_numbers(proxy, samples["rbridge_arith"], records, contexts)
        scores[name] = results["results"]["rbridge_arith"]["rbridge_nll,none"]
        assert results["configs"]["rbridge_arith"]["metadata"]["questions_source"] == (
            f"question file {questions}"
        )
    # the stock backend (pieces) gives the numbers it can compute, equal to the reference's
    _, stock = rbridge_eval(
        tmp_path / "stock", "--model", "hf", "--model_args", f"pretrained={gpt2_dir}",
        "--include_path", str(tasks), "--tasks", "rbridge_arith",
    )  # fmt: skip
    for sample in stock["rbridge_arith"]:
        expected = reference.document(
            gpt2_dir, contexts[sample["doc"]["id"]], records[sample["doc"]["id"]], pieces=True
        )
        for metric in PIECES_METRICS:
            assert sample[metric] == pytest.approx(expected[metric], abs=TOLERANCE)

    targets = tmp_path / "targets.csv"
    accuracy = {"gpt2": 0.2, "llama": 0.5, "frontier": 0.4, "other": 0.3}
    targets.write_text(
        "model,recipe,acc\n" + "".join(f"m-{r},{r},{a}\n" for r, a in accuracy.items())
    )
    predict = [sys.executable, "-m", "rbridge_tasks.cli", "predict"]
    subprocess.run(
        [*predict, "import-table", str(targets), "--model-column", "model", "--metric",
         "acc=arith_large:acc:higher", "--meta", "recipe=recipe",
         "--out-dir", str(tmp_path / "results" / "targets")],
        check=True, capture_output=True,
    )  # fmt: skip
    done = subprocess.run(
        [*predict, "fit", "--results", str(tmp_path / "results"), "--proxy-task",
         "rbridge_arith", "--proxy-metric", "rbridge_nll", "--target-task", "arith_large",
         "--target-metric", "acc", "--join-on", "recipe", "--form", "linear", "--folds", "2",
         "--json", "--quiet", "--no-plot"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    fit = json.loads(done.stdout)
    assert sorted((p["key"], p["x"]) for p in fit["points"]) == sorted(scores.items())


def test_question_file_mistakes_are_one_line(tmp_path, frontier_dir):
    questions = write_jsonl(tmp_path / "q.jsonl", [{"id": "1", "question": "Q?"}])
    base = [sys.executable, "-m", "rbridge_tasks.cli", "traces", "generate", "--backend", "hf",
            "--model", str(frontier_dir), "--out", str(tmp_path / "out.jsonl")]  # fmt: skip
    for args, message in [
        (["--questions", str(questions)], "--questions needs --benchmark NAME"),
        (["--questions", str(questions), "--benchmark", "mine"], "field 'answer': missing"),
        (["--questions", str(tmp_path), "--benchmark", "mine"], "is a folder"),
        (["--task", "gsm8k_nope"], "no lm-eval task named 'gsm8k_nope'; did you mean"),
    ]:
        done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr


# -- lm-eval tasks as the source -------------------------------------------------------------

MATH_TRAIN = [{"question": f"What is {a} times {b}?", "answer": str(a * b)} for a, b in
              [(2, 3), (4, 5), (6, 7)]]  # fmt: skip
MATH_TEST = [{"question": f"What is {a} times {b}?", "answer": str(a * b)} for a, b in
             [(3, 3), (5, 2), (8, 4)]]  # fmt: skip
CHOICE_TEST = [
    {"question": "Which is a colour?", "choices": ["red", "seven", "north"], "label": 0},
    {"question": "Which is a number?", "choices": ["tree", "seven"], "label": 1},
    {"question": "Which is a direction?", "choices": ["blue", "eight", "north"], "label": 2},
]


def write_lm_eval_tasks(folder: Path, pack: Path) -> Path:
    """Two lm-eval tasks as their users write them (local data files), and the rBridge tasks
    over them (only `task`, `class` and `metadata`)."""
    folder.mkdir()
    data = {
        "math_train": write_jsonl(folder / "math_train.jsonl", MATH_TRAIN),
        "math_test": write_jsonl(folder / "math_test.jsonl", MATH_TEST),
        "choice_test": write_jsonl(folder / "choice_test.jsonl", CHOICE_TEST),
    }
    (folder / "toy_math.yaml").write_text(
        textwrap.dedent(
            f"""\
            task: toy_math
            dataset_path: json
            dataset_kwargs:
              data_files:
                train: {data["math_train"]}
                test: {data["math_test"]}
            output_type: generate_until
            training_split: train
            test_split: test
            fewshot_split: train
            num_fewshot: 2
            doc_to_text: "Q: {{{{question}}}}\\nA:"
            doc_to_target: "{{{{answer}}}}"
            generation_kwargs:
              until: ["\\n"]
              do_sample: false
            metric_list:
              - metric: exact_match
            """
        )
    )
    (folder / "toy_choice.yaml").write_text(
        textwrap.dedent(
            f"""\
            task: toy_choice
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {data["choice_test"]}
            output_type: multiple_choice
            test_split: test
            doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
            doc_to_choice: choices
            doc_to_target: label
            metric_list:
              - metric: acc
            """
        )
    )
    for name in ("toy_math", "toy_choice"):
        (folder / f"rbridge_{name}.yaml").write_text(
            f"task: rbridge_{name}\nclass: !function rbridge_tasks.harness.task.RBridgeTask\n"
            f"metadata:\n  source_task: {name}\n  traces: {pack}\n"
        )
    return folder


def lm_eval_contexts(folder: Path, name: str) -> dict[str, str]:
    """What lm-eval itself puts before the target, per document index (its few-shot draw with
    its default seed)."""
    task = TaskManager(include_path=str(folder)).load([name])["tasks"][name]
    task.set_fewshot_seed(seed=1234)
    shots = task.config.num_fewshot or 0
    return {
        str(i): task.fewshot_context(doc, num_fewshot=shots) + task.config.target_delimiter
        for i, doc in enumerate(task.eval_docs)
    }


def test_lm_eval_task_documents_become_questions(tmp_path):
    tasks = write_lm_eval_tasks(tmp_path / "tasks", tmp_path / "pack")
    math = load_lm_eval_questions("toy_math", "toy_math", include_path=[str(tasks)])
    assert [(q.id, q.question, q.gold) for q in math] == [
        (str(i), f"Q: {row['question']}\nA:", row["answer"]) for i, row in enumerate(MATH_TEST)
    ]
    assert {q.answer_type for q in math} == {"number"}
    contexts = lm_eval_contexts(tasks, "toy_math")
    assert [q.prompt + q.delimiter for q in math] == [contexts[q.id] for q in math]
    choice = load_lm_eval_questions(
        "toy_choice", "mine", include_path=[str(tasks)], id_field="question"
    )
    assert [q.id for q in choice] == [row["question"] for row in CHOICE_TEST]
    assert [q.gold for q in choice] == ["A", "B", "C"]
    assert choice[1].choices == (("A", "tree"), ("B", "seven"))
    assert {(q.answer_type, q.benchmark) for q in choice} == {("choice", "mine")}
    with pytest.raises(RBridgeError, match="document 0 has no field 'qid'"):
        load_lm_eval_questions("toy_choice", "mine", include_path=[str(tasks)], id_field="qid")
    with pytest.raises(
        RBridgeError, match="no lm-eval task named 'toy_maths'; did you mean toy_math"
    ):
        load_lm_eval_questions("toy_maths", "mine", include_path=[str(tasks)])


def test_lm_eval_tasks_as_question_sources_end_to_end(tmp_path, frontier_dir, gpt2_dir):
    pack = tmp_path / "pack"
    tasks = write_lm_eval_tasks(tmp_path / "tasks", pack)
    for name in ("toy_math", "toy_choice"):
        source = ["--task", name, "--include-path", str(tasks)]
        generate(*source, "--model", str(frontier_dir), "--out", str(pack / f"{name}.jsonl"))
        pack_file = str(pack / f"{name}.jsonl")
        assert traces_main(["validate", pack_file, *source, "--min-coverage", "1"]) == 0
    math_records = pack_records(pack / "toy_math.jsonl")
    choice_records = pack_records(pack / "toy_choice.jsonl")
    assert sorted(math_records) == sorted(choice_records) == ["0", "1", "2"]  # document index

    results, samples = rbridge_eval(
        tmp_path / "out", "--model", "hf-rbridge", "--model_args", f"pretrained={gpt2_dir}",
        "--include_path", str(tasks), "--tasks", "rbridge_toy_math,rbridge_toy_choice",
    )  # fmt: skip
    math_contexts = lm_eval_contexts(tasks, "toy_math")
    assert all(ctx.count("\nA:") == 3 for ctx in math_contexts.values())  # two shots + the doc
    check_numbers(gpt2_dir, samples["rbridge_toy_math"], math_records, math_contexts)
    check_numbers(
        gpt2_dir,
        samples["rbridge_toy_choice"],
        choice_records,
        lm_eval_contexts(tasks, "toy_choice"),
    )
    assert results["configs"]["rbridge_toy_math"]["metadata"]["questions_source"] == (
        "lm-eval task toy_math"
    )
