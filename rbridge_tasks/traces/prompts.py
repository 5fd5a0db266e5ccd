"""Frontier prompts: zero-shot chain of thought that closes with one final-answer line.

Each benchmark asks for its answer in a closing line that `answer_lines.scored_span` already
strips ("The answer is ..."), so the scored trace is the reasoning alone, and that
`answers.extract_answer` reads. HumanEval asks for an explanation and then the whole function in
a code block: the code is the answer and stays in the scored trace (it is the reasoning the proxy
must reproduce; there is no separate answer line).

The same text serves chat models (as the user message, through the model's chat template) and
base models (as a completion prompt ending in "Answer:").
"""

from __future__ import annotations

from dataclasses import dataclass

from rbridge_tasks.benchmarks import MULTIPLE_CHOICE, Question

_INSTRUCTIONS = {
    "gsm8k": (
        "Solve the following math word problem. Reason step by step, then finish with a last "
        'line of the form "The answer is N." where N is the final number.'
    ),
    "math500": (
        "Solve the following math problem. Reason step by step, then finish with a last line "
        'of the form "The answer is $\\boxed{ANSWER}$." with the final answer in simplest form.'
    ),
    "multiple_choice": (
        "Answer the following multiple-choice question. Reason step by step, then finish with "
        'a last line of the form "The answer is (X)." where X is the label of the correct option.'
    ),
    "humaneval": (
        "Complete the following Python function. Explain your approach step by step, then give "
        "the complete function (signature and body, with any imports it needs) in one ```python "
        "code block."
    ),
}


@dataclass(frozen=True)
class FrontierPrompt:
    """`user` is the chat message; `completion` the same text for base models and plain APIs."""

    user: str
    completion: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.user}]


def frontier_prompt(question: Question) -> FrontierPrompt:
    if question.benchmark == "humaneval":
        body = f"```python\n{question.question}```"
        instruction = _INSTRUCTIONS["humaneval"]
    elif question.benchmark in MULTIPLE_CHOICE:
        options = "".join(f"\n({label}) {text}" for label, text in question.choices)
        body = f"Question: {question.question}" + (f"\nOptions:{options}" if options else "")
        instruction = _INSTRUCTIONS["multiple_choice"]
    else:
        body = f"Question: {question.question}"
        instruction = _INSTRUCTIONS[question.benchmark]
    user = f"{instruction}\n\n{body}"
    return FrontierPrompt(user=user, completion=f"{user}\n\nAnswer:")
