"""Frontier prompts: zero-shot chain of thought that closes with one final-answer line.

Each benchmark asks for its answer in a closing line that `answer_lines.scored_span` already
strips ("The answer is ..."), so the scored trace is the reasoning alone, and that
`answers.extract_answer` reads. HumanEval asks for an explanation and then the whole function in
a code block: the code is the answer and stays in the scored trace (it is the reasoning the proxy
must reproduce; there is no separate answer line).

The same text serves chat models (as the user message, through the model's chat template) and
base models (as a completion prompt ending in "Answer:"). The instruction follows the question's
answer type, so a benchmark of the user's own gets the six's prompts (or its own template).

`paper_prompt` is the paper's own (arXiv 2509.21013v4, appendix "Prompt to Frontier Model"): the
system message `You are a helpful assistant that solves [task] problems.` and the question
followed by the JSON reply format; `json_reply.py` reads the reply. The paper does not list its
[task] words; ours are in `PAPER_TASKS` (MMLU-Pro names each question's own category, e.g.
"physics"). The question is written as in the zero-shot prompt (options listed as `(A) ...`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.sources import Question

# the instruction for each answer type (`questions.sources.ANSWER_TYPES`)
_INSTRUCTIONS = {
    "number": (
        "Solve the following math word problem. Reason step by step, then finish with a last "
        'line of the form "The answer is N." where N is the final number.'
    ),
    "math": (
        "Solve the following math problem. Reason step by step, then finish with a last line "
        'of the form "The answer is $\\boxed{ANSWER}$." with the final answer in simplest form.'
    ),
    "choice": (
        "Answer the following multiple-choice question. Reason step by step, then finish with "
        'a last line of the form "The answer is (X)." where X is the label of the correct option.'
    ),
    "code": (
        "Complete the following Python function. Explain your approach step by step, then give "
        "the complete function (signature and body, with any imports it needs) in one ```python "
        "code block."
    ),
    "text": (
        "Answer the following question. Reason step by step, then finish with a last line of the "
        'form "The answer is X." where X is the final answer.'
    ),
}


PROMPT_STYLES = ("cot", "paper", "template")
PAPER_TASKS = {
    "gsm8k": "math word",
    "math500": "math",
    "arc_challenge": "science",
    "csqa": "commonsense reasoning",
    "humaneval": "Python programming",
    "mmlu_pro": "STEM",  # when a question has no category
}
OTHER_TASK = "reasoning"  # the paper's [task] word for a benchmark of the user's own
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


def frontier_prompt(
    question: Question, style: str = "cot", template: str | None = None
) -> FrontierPrompt:
    """The prompt of one question: `cot` (the default), `paper`, or `template`, the user's own
    text with `{question}` (the question, options listed) and optionally `{options}` (only the
    options) in it; it should ask for a closing "The answer is ..." line, which is stripped."""
    if style == "paper":
        return paper_prompt(question)
    if style == "template":
        if template is None:
            raise RBridgeError("the template prompt style needs a template text")
        options = "".join(f"\n({label}) {text}" for label, text in question.choices)
        user = template.replace("{question}", _body(question, prefix="")).replace(
            "{options}", options.strip()
        )
        return FrontierPrompt(user=user, completion=f"{user}\n\nAnswer:")
    instruction = _INSTRUCTIONS[question.answer_type]
    user = f"{instruction}\n\n{_body(question)}"
    return FrontierPrompt(user=user, completion=f"{user}\n\nAnswer:")


def paper_prompt(question: Question) -> FrontierPrompt:
    benchmark = question.benchmark
    task = question.extra.get("category") if benchmark == "mmlu_pro" else None
    task = task or PAPER_TASKS.get(benchmark, OTHER_TASK)
    system = f"You are a helpful assistant that solves {task} problems."
    user = f"{_body(question, prefix='')}\n\n{PAPER_FORMAT}"
    return FrontierPrompt(user=user, completion=f"{system}\n\n{user}\n\nAnswer:", system=system)


def _body(question: Question, prefix: str = "Question: ") -> str:
    if question.answer_type == "code":
        return f"```python\n{question.question}```"
    options = "".join(f"\n({label}) {text}" for label, text in question.choices)
    return f"{prefix}{question.question}" + (f"\nOptions:{options}" if options else "")
