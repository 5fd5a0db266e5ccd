"""A tiny GPT-2 trained until its greedy completions of a few GSM8K prompts are fixed texts.

Random tiny models never write an answer line, so answer extraction, checking and stripping
would go untested end to end. This model is a real transformers model that really generates
these completions (with logprobs well below 0, so confidences vary), including a 4-byte emoji and
a 2-byte letter that byte-level BPE splits across tokens.
"""

from __future__ import annotations

from pathlib import Path

from tiny_models import build_tiny_lm

from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.traces.prompts import frontier_prompt

# GSM8K test row -> the completion the model learns (gold answers: 18, 3, 70000, 540).
COMPLETIONS = {
    0: " Janet’s ducks lay 16 eggs 🦆 a day. She uses 3 + 4 = 7, so 16 - 7 = 9 are sold at "
    "$2: 9 * 2 = 18.\nThe answer is 18.",
    1: " Blue is 2 bolts, white is half of that: 1 bolt. Naïvely 2 + 2 = 4.\nThe answer is 4.",
    2: " The answer is 70000.",
    3: " He runs 3 sprints 3 times: 9 sprints of 60 m, so 9 * 60 = 540 meters.\nThe answer is 540.",
}
CORRECT_ROWS = (0, 3)
ANSWER_ONLY_ROWS = (2,)


def build_memorised_lm(out_dir: Path, data_dir: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_lm(out_dir, family="gpt2", seed=3, n_layer=2, n_embd=64)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    questions = load_questions("gsm8k", data_dir)
    rows = []
    for row, completion in COMPLETIONS.items():
        prompt_ids = tokenizer(frontier_prompt(questions[row]).completion).input_ids
        target_ids = tokenizer(completion, add_special_tokens=False).input_ids
        rows.append((prompt_ids, [*target_ids, tokenizer.eos_token_id]))
    width = max(len(p) + len(t) for p, t in rows)
    input_ids = torch.full((len(rows), width), tokenizer.eos_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (prompt_ids, target_ids) in enumerate(rows):
        sequence = prompt_ids + target_ids
        input_ids[i, : len(sequence)] = torch.tensor(sequence)
        labels[i, len(prompt_ids) : len(sequence)] = torch.tensor(target_ids)
        mask[i, : len(sequence)] = 1
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # session fixtures run before the per-test one_torch_thread
    try:
        for _ in range(600):
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if loss.item() < 0.02:
                break
    finally:
        torch.set_num_threads(threads)
    model.eval()
    for prompt_ids, target_ids in rows:
        out = model.generate(
            torch.tensor([prompt_ids]),
            do_sample=False,
            max_new_tokens=len(target_ids) + 5,
            pad_token_id=tokenizer.eos_token_id,
        )
        if out[0, len(prompt_ids) :].tolist()[: len(target_ids)] != target_ids:
            raise RuntimeError("the memorised model did not learn its completions")
    model.save_pretrained(out_dir)
    return out_dir
