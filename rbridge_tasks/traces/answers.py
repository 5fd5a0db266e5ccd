"""Final answers: pulled out of a completion and checked against the benchmark's gold.

Extraction reads the answer the prompt asked for ("The answer is ...", a `\\boxed{}`) and the
common variants frontier models write instead; when several are present the last one counts, as
the model's final word. Checking is per benchmark: GSM8K compares numbers, MATH-500 compares
answers after the normalisation of Hendrycks et al.'s MATH grader (plus numeric equality),
multiple choice compares option letters and HumanEval runs the benchmark's tests in a subprocess.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from rbridge_tasks.questions.sources import Question, normalise_text
from rbridge_tasks.traces.humaneval_exec import check_humaneval

_ANSWER_IS = re.compile(r"(?i:answer\s+is|answer\s*:|####)")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
# A letter (or, in some ARC questions, a number) right after the phrase or inside the box.
_OPTION_AFTER_PHRASE = (
    r"(?i:answer\s+is|answer\s*:)\s*(?:\*\*)?\s*(?:option\s+)?(?:\\\(\s*)?"
    r"(?:\\boxed\s*\{{\s*)?\(?\s*({labels})\s*\)?(?![A-Za-z0-9])"
)
_OPTION_IN_BOX = r"\\boxed\s*\{{\s*(?:\\text\{{\s*)?\(?\s*({labels})\s*\)?(?![A-Za-z0-9])"
_CODE_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)


def extract_answer(question: Question, completion: str) -> str | None:
    """The model's final answer (the code, for code), or None when it gave none.

    A multiple-choice answer must be one of the question's option labels.
    """
    kind = question.answer_type
    if kind == "number":
        return _extract_number(completion)
    if kind == "math":
        return _extract_math(completion)
    if kind == "choice":
        return _extract_option(completion, [label for label, _ in question.choices])
    if kind == "code":
        return _extract_code(completion)
    return _extract_text(completion)


def is_correct(question: Question, answer: str | None, *, humaneval_timeout: float = 10.0) -> bool:
    if answer is None:
        return False
    kind = question.answer_type
    if kind == "number":
        return _same_number(answer, question.gold)
    if kind == "math":
        return math_equivalent(answer, question.gold)
    if kind == "choice":
        return answer.strip().upper() == question.gold.strip().upper()
    if kind == "code":  # HumanEval's only (`QuestionSource`): its tests are run
        return check_humaneval(question, answer, timeout=humaneval_timeout).passed
    return same_text(answer, question.gold)


# --- text (a benchmark of the user's own) ------------------------------------------------------


def _extract_text(text: str) -> str | None:
    """The last answer span (after "The answer is", or boxed), up to its line's end."""
    span = _last_answer_span(text)
    if span is None:
        return None
    answer = span.strip().strip("*").strip()
    return answer.removesuffix(".").strip() or None


def same_text(answer: str, gold: str) -> bool:
    """Equal as numbers when both are, else after Unicode normalisation, case-folding and
    dropping surrounding quotes and final punctuation."""
    a, b = _to_decimal(answer.strip()), _to_decimal(gold.strip())
    if a is not None and b is not None:
        return a == b

    def norm(text: str) -> str:
        return normalise_text(text).casefold().strip().strip("\"'`").rstrip(".!").strip()

    return norm(answer) == norm(gold)


# --- GSM8K -----------------------------------------------------------------------------------


def _extract_number(text: str) -> str | None:
    """First number of the last answer span (boxed or after 'answer is'), else the last number."""
    span = _last_answer_span(text)
    numbers = _NUMBER.findall(span if span is not None else text)
    if not numbers:
        return None
    number = numbers[0] if span is not None else numbers[-1]
    value = _to_decimal(number)
    return None if value is None else _format_decimal(value)


def _last_answer_span(text: str) -> str | None:
    boxes = list(_BOX.finditer(text))
    phrases = list(_ANSWER_IS.finditer(text))
    if phrases and (not boxes or phrases[-1].start() > boxes[-1].start()):
        phrase = phrases[-1]
        line_end = text.find("\n", phrase.end())
        return text[phrase.end() : line_end if line_end >= 0 else len(text)]
    return last_boxed(text)


def _to_decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number.replace(",", "").rstrip("."))
    except InvalidOperation:
        return None


def _format_decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _same_number(answer: str, gold: str) -> bool:
    a, b = _to_decimal(answer.strip().lstrip("$")), _to_decimal(gold.strip().lstrip("$"))
    return a is not None and b is not None and a == b


# --- MATH-500 --------------------------------------------------------------------------------


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (braces balanced), or None."""
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    for position in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0:
            return text[start:position]
    return None


def _extract_math(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    span = _last_answer_span(text)
    if span is None:
        return None
    span = span.strip().rstrip(".").strip()
    return span.strip("$").strip() or None


def math_equivalent(answer: str, gold: str) -> bool:
    """Equal after MATH normalisation, or equal as numbers."""
    a, b = normalise_math_answer(answer), normalise_math_answer(gold)
    if a == b:
        return True
    x, y = _to_decimal(a), _to_decimal(b)
    return x is not None and y is not None and x == y


def normalise_math_answer(text: str) -> str:
    """Hendrycks et al.'s `strip_string` (MATH grader), plus `\\text{}` and `$` unwrapping."""
    text = text.strip().strip("$").strip()
    if "\\text{ " in text:  # MATH writes units as "5\\text{ cm}"
        text = text.split("\\text{ ")[0]
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{\s*([^{}]*?)\s*\}", r"\1", text)
    text = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "").replace("\\%", "").replace("%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if text.startswith("."):
        text = "0" + text
    if len(text.split("=")) == 2 and len(text.split("=")[0].strip()) <= 2:
        text = text.split("=")[1]
    text = _fix_sqrt(text).replace(" ", "")
    text = _fix_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _fix_a_slash_b(text)


def _fix_sqrt(text: str) -> str:
    return re.sub(r"\\sqrt(?![{\[])(\w)", r"\\sqrt{\1}", text)


def _fix_fracs(text: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1{7}` -> `\\frac{1}{7}`."""
    parts = text.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
        elif part[1] == "{":
            out += "{" + part[0] + "}" + part[1:]
        else:
            out += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
    return out


def _fix_a_slash_b(text: str) -> str:
    match = re.fullmatch(r"(-?\d+)/(\d+)", text)
    return f"\\frac{{{match.group(1)}}}{{{match.group(2)}}}" if match else text


# --- multiple choice -------------------------------------------------------------------------


def _extract_option(text: str, labels: list[str]) -> str | None:
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    best: tuple[int, str] | None = None
    for template in (_OPTION_AFTER_PHRASE, _OPTION_IN_BOX):
        for match in re.finditer(template.format(labels=alternatives), text):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1))
    return None if best is None else best[1]


# --- HumanEval -------------------------------------------------------------------------------


def _extract_code(text: str) -> str | None:
    """The last fenced code block; without one, the completion itself (a function body)."""
    blocks = _CODE_BLOCK.findall(text)
    if blocks:
        return blocks[-1]
    return text if text.strip() else None
