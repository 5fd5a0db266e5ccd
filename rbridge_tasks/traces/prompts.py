"""Frontier prompts: zero-shot chain of thought that closes with one final-answer line.

Each benchmark asks for its answer in a closing line that `answer_lines.scored_span` already
strips ("The answer is ..."), so the scored trace is the reasoning alone, and that
`answers.extract_answer` reads. HumanEval asks for an explanation and then the whole function in
a code block: the code is the answer and stays in the scored trace (it is the reasoning the proxy
must reproduce; there is no separate answer line).

The same text serves chat models (as the user message, through the model's chat template) and
base models (as a completion prompt ending in "Answer:").

`paper_prompt` is the paper's own (arXiv 2509.21013v4, appendix "Prompt to Frontier Model"): the
system message `You are a helpful assistant that solves [task] problems.` and the question
followed by the JSON reply format; `json_reply.py` reads the reply. The paper does not list its
[task] words; ours are in `PAPER_TASKS` (MMLU-Pro names each question's own category, e.g.
"physics"). The question is written as in the zero-shot prompt (options listed as `(A) ...`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rbridge_tasks.questions.sources import MULTIPLE_CHOICE, Question

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


PROMPT_STYLES = ("cot", "paper")
PAPER_TASKS = {
    "gsm8k": "math word",
    "math500": "math",
    "arc_challenge": "science",
    "csqa": "commonsense reasoning",
    "humaneval": "Python programming",
    "mmlu_pro": "STEM",  # when a question has no category
}
PAPER_FORMAT = (
    "Respond ONLY with a JSON object in this exact format:\n"
    '{ "reasoning": "your step by step reasoning", "final_answer": "your final answer" }'
)


@dataclass(frozen=True)
class FrontierPrompt:
    """`user` is the chat message (after `system`, when there is one); `completion` the same
    text for base models and plain APIs."""

    user: str
    completion: str
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": self.user}]


def frontier_prompt(question: Question, style: str = "cot") -> FrontierPrompt:
    if style == "paper":
        return paper_prompt(question)
    if question.benchmark == "humaneval":
        instruction = _INSTRUCTIONS["humaneval"]
    elif question.benchmark in MULTIPLE_CHOICE:
        instruction = _INSTRUCTIONS["multiple_choice"]
    else:
        instruction = _INSTRUCTIONS[question.benchmark]
    user = f"{instruction}\n\n{_body(question)}"
    return FrontierPrompt(user=user, completion=f"{user}\n\nAnswer:")


def paper_prompt(question: Question) -> FrontierPrompt:
    benchmark = question.benchmark
    task = question.extra.get("category") if benchmark == "mmlu_pro" else None
    task = task or PAPER_TASKS[benchmark]
    system = f"You are a helpful assistant that solves {task} problems."
    user = f"{_body(question, prefix='')}\n\n{PAPER_FORMAT}"
    return FrontierPrompt(user=user, completion=f"{system}\n\n{user}\n\nAnswer:", system=system)


def _body(question: Question, prefix: str = "Question: ") -> str:
    if question.benchmark == "humaneval":
        return f"```python\n{question.question}```"
    options = "".join(f"\n({label}) {text}" for label, text in question.choices)
    return f"{prefix}{question.question}" + (f"\nOptions:{options}" if options else "")
