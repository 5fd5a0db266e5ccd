"""`generate --prompt paper`: the paper's prompt, its JSON replies (every escape, cut anywhere,
characters split over byte tokens), one retry of a reply that breaks the format, answers read
from `final_answer`; through the OpenAI-compatible test server and the hf backend."""

from __future__ import annotations

import json
import math
import random

import pytest

from rbridge_tasks.questions.sources import Question, load_questions
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.traces.backend_hf import HFModel
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.generate import SKIPPED_SUFFIX, generate_traces
from rbridge_tasks.traces.paper import BAD_FORMAT, paper_answer
from rbridge_tasks.traces.prompts import PAPER_FORMAT, paper_prompt

TOLERANCE = 1e-12  # relative: exp(log(mean p)) against mean p
# every JSON escape; '/' is written '\/' (json.dumps never does); 🦆 is a surrogate pair
R0 = 'Eggs: 16 - 3 - 4 = 9\n\tsold at $2: "9 * 2" = 18 \\ 1/2 \b\f\r café 🦆.'
R1 = "Half of 2 is 1 bolt; 2 + 1 = 3 ✓ 🦆 naïve.\nThe answer is 3."  # kept: R is all of it


def escaped(reasoning: str, ensure_ascii: bool) -> list[str]:
    return [
        "\\/" if c == "/" else json.dumps(c, ensure_ascii=ensure_ascii)[1:-1] for c in reasoning
    ]


def reply(forms: list[str], answer: str) -> tuple[str, int]:
    """The raw reply and where its reasoning value starts."""
    head = '{"reasoning": "'
    return head + "".join(forms) + f'", "final_answer": "{answer}"}}', len(head)


def cut(raw: bytes, seed: int) -> list[tuple[bytes, float]]:
    """Byte pieces of 1-5 bytes (splitting escapes and UTF-8 characters) with logprobs."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(raw):
        step = rng.randint(1, 5)
        pieces.append((raw[at : at + step], math.log(rng.uniform(0.05, 1.0))))
        at += step
    return pieces


def expected_confidences(forms, start, pieces) -> list[float]:
    """The rule, from the bytes: a raw character is held by the token holding its last byte."""
    probability_of_byte = []
    for piece, lp in pieces:
        probability_of_byte += [math.exp(lp)] * len(piece)
    raw = b"".join(p for p, _ in pieces).decode("utf-8")
    char_probability, offset = [], 0
    for char in raw:
        offset += len(char.encode("utf-8"))
        char_probability.append(probability_of_byte[offset - 1])
    out, at = [], start
    for form in forms:
        out.append(sum(char_probability[at : at + len(form)]) / len(form))
        at += len(form)
    return out


def confidences(record) -> list[float]:
    return [
        math.exp(lp)
        for text, lp in zip(record.token_texts, record.token_logprobs, strict=True)
        for _ in text
    ]


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_paper_replies_through_the_openai_backend(openai_server, data_dir, tmp_path, capsys, api):
    questions = load_questions("gsm8k", data_dir)[:3]
    forms0, forms1 = escaped(R0, ensure_ascii=True), escaped(R1, ensure_ascii=False)
    raw0, start0 = reply(forms0, "18")
    raw1, start1 = reply(forms1, "$3")
    replies = {
        0: [cut(raw0.encode(), 0)],
        1: [cut(b'{"reasoning": "Half of 2 is 1', 1), cut(raw1.encode("utf-8"), 2)],
        2: [cut(b'{"final_answer": "4"}', 3), cut(b'{"reasoning": 7, "final_answer": "4"}', 4)],
    }
    for row, scripted in replies.items():
        openai_server.scripted[questions[row].question] = list(scripted)
    out = tmp_path / "paper.jsonl"
    argv = ["generate", "--prompt", "paper", "--benchmark", "gsm8k", "--backend", "openai"]
    argv += ["--model", "gpt-4o", "--base-url", openai_server.base_url, "--api", api]
    argv += ["--data-dir", str(data_dir), "--limit", "3", "--concurrency", "1", "--out", str(out)]
    argv += ["--max-retries", "0", "--no-progress"]
    assert traces_main(argv) == 0
    assert capsys.readouterr().out.endswith(
        f"2 new trace(s) (2 correct), 0 already done, skipped: 1 {BAD_FORMAT}\n"
    )
    assert len(openai_server.requests) == 5  # one retry each for rows 1 and 2
    records = {r.id: r for r in read_traces(out)}
    assert sorted(records) == ["0", "1"]
    for row, reasoning, forms, start, pieces, attempts in (
        ("0", R0, forms0, start0, replies[0][-1], 1),
        ("1", R1, forms1, start1, replies[1][-1], 2),
    ):
        record = records[row]
        assert record.trace == reasoning and record.correct is True
        assert record.answer == {"0": "18", "1": "3"}[row]
        got, expected = confidences(record), expected_confidences(forms, start, pieces)
        assert len(got) == len(expected) == len(reasoning)
        for g, e in zip(got, expected, strict=True):
            assert g == pytest.approx(e, rel=TOLERANCE, abs=0.0)
        meta = record.meta
        assert meta["completion"] == b"".join(p for p, _ in pieces).decode("utf-8")
        assert meta["attempts"] == attempts and meta["final_answer"] in ("18", "$3")
        assert (
            meta["system_prompt"] == "You are a helpful assistant that solves math word problems."
        )
        prompt = paper_prompt(questions[int(row)])
        assert meta["prompt"] == (prompt.user if api == "chat" else prompt.completion)
        assert prompt.user.startswith(questions[int(row)].question)
        assert prompt.user.endswith(PAPER_FORMAT)
        assert "".join(t["text"] for t in meta["reply_tokens"]) == meta["completion"]
    skip = out.with_name(out.name + SKIPPED_SUFFIX)
    (entry,) = [json.loads(line) for line in skip.read_text().splitlines()]
    assert entry["id"] == "2" and entry["reason"] == BAD_FORMAT
    assert entry["detail"].startswith("field 'reasoning': must be a string, got int 7")
    check = ["validate", str(out), "--data-dir", str(data_dir), "--strict", "--min-coverage", "0"]
    assert traces_main(check) == 0
    assert "OK:" in capsys.readouterr().out
    before = out.read_bytes(), skip.read_bytes()
    assert traces_main(argv) == 0  # resumed: nothing left to ask
    assert "0 new trace(s) (0 correct), 3 already done" in capsys.readouterr().out
    assert (out.read_bytes(), skip.read_bytes()) == before and len(openai_server.requests) == 5


class CountingHF(HFModel):
    """The real HF backend, noting the ids it is asked to complete."""

    asked: list[str]

    def complete(self, requests):
        self.asked = [*getattr(self, "asked", []), *(r.id for r in requests)]
        return super().complete(requests)


def test_hf_backend_renders_the_paper_prompt_and_retries_once(gpt2_dir, data_dir, tmp_path):
    questions = load_questions("csqa", data_dir)[:2]
    model = CountingHF(str(gpt2_dir), dtype="float32", device="cpu", batch_size=2, max_new_tokens=4)
    out = tmp_path / "paper.jsonl"
    summary = generate_traces(
        questions, model, out, backend_label="hf", progress=False, prompt_style="paper"
    )
    assert summary.written == 0 and summary.skipped == {BAD_FORMAT: 2}  # a random model
    assert model.asked == [q.id for q in questions] + [q.id for q in questions]
    skip = [json.loads(line) for line in out.with_name(out.name + SKIPPED_SUFFIX).open()]
    assert [e["id"] for e in skip] == [q.id for q in questions]
    assert all(e["reason"] == BAD_FORMAT and e["detail"] for e in skip)


def test_final_answers_are_read_by_the_benchmark_checkers(data_dir):
    csqa = load_questions("csqa", data_dir)[0]
    label, text = csqa.choices[1]
    assert paper_answer(csqa, label) == label
    assert paper_answer(csqa, f"({label}) {text}") == label
    assert paper_answer(csqa, text.upper()) == label
    math500 = load_questions("math500", data_dir)[0]
    assert paper_answer(math500, math500.gold) == math500.gold.strip()
    assert paper_answer(math500, f"\\boxed{{{math500.gold}}}") == math500.gold.strip()
    gsm8k = load_questions("gsm8k", data_dir)[0]
    assert paper_answer(gsm8k, "$18.00") == "18" and paper_answer(gsm8k, "none") is None


HF_REASONING = '16 - 3 - 4 = 9 eggs.\n"9 * 2" = 18 café 🦆'


@pytest.fixture(scope="module")
def json_replier(tmp_path_factory):
    """A tiny GPT-2 trained until its greedy reply to the paper prompt of a short GSM8K-style
    question is one JSON reply (escapes, a `\\u00e9` and a raw emoji that byte-level BPE
    splits), then EOS."""
    import torch
    from tiny_models import build_tiny_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = build_tiny_lm(tmp_path_factory.mktemp("json-gpt2"), seed=5, n_layer=2, n_embd=64)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    question = Question("0", "gsm8k", "Sell 16 - 3 - 4 eggs at $2: dollars?", "18")
    forms = escaped(HF_REASONING, ensure_ascii=False)
    forms[forms.index("é")] = "\\u00e9"
    raw, start = reply(forms, "18")
    prompt = tokenizer(paper_prompt(question).completion).input_ids
    target = [*tokenizer(raw, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    ids = torch.tensor([prompt + target])
    labels = torch.tensor([[-100] * len(prompt) + target])
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one_torch_thread
    try:
        for _ in range(400):
            loss = model(input_ids=ids, labels=labels).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if loss.item() < 0.02:
                break
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(out)
    return out, question, forms, start, raw


def test_hf_backend_generates_a_paper_reply(json_replier, tmp_path):
    from openai_test_server import byte_decoder
    from trace_checks import forward_logprobs

    model_dir, question, forms, start, raw = json_replier
    model = HFModel(str(model_dir), dtype="float32", device="cpu", max_new_tokens=120)
    out = tmp_path / "paper.jsonl"
    summary = generate_traces(
        [question], model, out, backend_label="hf", progress=False, prompt_style="paper"
    )
    (record,) = read_traces(out)
    assert summary.correct == 1 and record.meta["completion"] == raw
    assert record.trace == HF_REASONING and record.answer == "18"
    # the reference: the generated ids' logprobs from a plain forward pass, their raw bytes
    tokenizer = model.tokenizer
    ids = record.meta["completion_token_ids"]
    logprobs = forward_logprobs(model_dir, tokenizer(record.meta["prompt"]).input_ids, ids)
    to_byte = byte_decoder()
    pieces = [
        (bytes(to_byte[c] for c in tokenizer.convert_ids_to_tokens(i)), lp)
        for i, lp in zip(ids, logprobs, strict=True)
    ]
    assert any(len(p) < len("🦆".encode()) and p[:1] == b"\xf0" for p, _ in pieces)  # split
    got, expected = confidences(record), expected_confidences(forms, start, pieces)
    assert len(got) == len(expected) == len(HF_REASONING)
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, rel=1e-4)  # float32 generation against a forward pass
