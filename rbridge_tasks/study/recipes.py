"""Data recipes: pre-training mixtures that differ in how much reasoning text they hold and how
clean it is, each a seeded generator of documents.

A document is one of five kinds (`KINDS`):

- `solution`: a question and its worked solution, closing `The answer is N.` Three in four read
  `Question: ...\\nAnswer: ...` (the benchmark's prompt); one in four carry the instruction of
  `rbridge traces generate`'s zero-shot prompt first, so a model can answer that prompt too;
- `answer_only`: a question and only its answer line (the chain has to happen inside the model);
- `corrupted`: a worked solution with one or two slipped results that the later steps carry on,
  and the answer that follows from them;
- `arithmetic`: a line of equations of the kind the solutions use (`17 - 5 = 12`);
- `prose`: sentences about the same people and things, with numbers but no question.

A recipe is a share of tokens per kind. Documents are drawn in the order that keeps every kind's
token count closest to its share (the kind furthest behind goes next), so the shares hold
exactly at any length; each document's content comes from the recipe's own random stream. No
training document asks a held-out test question.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rbridge_tasks.questions.sources import Question
from rbridge_tasks.study.problems import (
    ITEMS,
    MAX_OPERAND,
    MAX_VALUE,
    NAMES,
    Problem,
    apply,
    random_problem,
)
from rbridge_tasks.traces.prompts import frontier_prompt

KINDS = ("solution", "answer_only", "corrupted", "arithmetic", "prose")


@dataclass(frozen=True)
class Recipe:
    name: str
    shares: dict[str, float]  # token share per kind, summing to 1
    about: str

    def describe(self) -> str:
        return ", ".join(f"{kind} {share:.0%}" for kind, share in self.shares.items() if share)


def _recipe(name: str, about: str, **shares: float) -> Recipe:
    return Recipe(name, {kind: shares.get(kind, 0.0) for kind in KINDS}, about)


# Ordered from the most to the least clean worked reasoning, roughly.
RECIPES = (
    _recipe("sol60", "many clean solutions", solution=0.6, arithmetic=0.1, prose=0.3),
    _recipe("sol40", "clean solutions, more prose", solution=0.4, arithmetic=0.1, prose=0.5),
    _recipe("sol40-bare", "as sol40 without arithmetic lines", solution=0.4, prose=0.6),
    _recipe(
        "sol30-noisy10",
        "solutions, a quarter of them corrupted",
        solution=0.3,
        corrupted=0.1,
        arithmetic=0.1,
        prose=0.5,
    ),
    _recipe(
        "sol20-drill",
        "few solutions, many arithmetic lines",
        solution=0.2,
        arithmetic=0.4,
        prose=0.4,
    ),
    _recipe(
        "sol20-answers30",
        "few solutions, many answer-only examples",
        solution=0.2,
        answer_only=0.3,
        arithmetic=0.1,
        prose=0.4,
    ),
    _recipe(
        "sol20-noisy30",
        "more corrupted than clean solutions",
        solution=0.2,
        corrupted=0.3,
        arithmetic=0.1,
        prose=0.4,
    ),
    _recipe(
        "sol15", "few clean solutions, mostly prose", solution=0.15, arithmetic=0.1, prose=0.75
    ),
    _recipe(
        "answers40",
        "answer-only examples and a few solutions",
        solution=0.08,
        answer_only=0.4,
        arithmetic=0.12,
        prose=0.4,
    ),
    _recipe("sol8", "almost no worked reasoning", solution=0.08, arithmetic=0.12, prose=0.8),
)
BY_NAME = {r.name: r for r in RECIPES}
# what the tokenizer is trained on: every kind, so no recipe's text is split unusually
TOKENIZER_MIX = _recipe("tokenizer", "every kind", **dict.fromkeys(KINDS, 0.2))


def documents(
    recipe: Recipe,
    seed: int,
    held_out: frozenset[str],
    count_tokens: Callable[[str], int],
) -> Iterator[tuple[str, str]]:
    """(kind, text) forever, for `recipe` from `seed`, never asking a `held_out` question."""
    rng = random.Random(f"{recipe.name}-{seed}")
    made = dict.fromkeys(KINDS, 0)
    active = [k for k in KINDS if recipe.shares[k] > 0]
    while True:
        total = sum(made.values()) or 1
        kind = min(active, key=lambda k: (made[k] - recipe.shares[k] * total) / recipe.shares[k])
        text = WRITERS[kind](rng, held_out)
        made[kind] += count_tokens(text)
        yield kind, text


def _problem(rng: random.Random, held_out: frozenset[str]) -> Problem:
    while True:
        problem = random_problem(rng)
        if problem.question not in held_out:
            return problem


def solution_text(problem: Problem, rng: random.Random, slips: dict[int, int] | None = None) -> str:
    answer = problem.values(slips)[-1]
    body = f"{problem.solution(slips)}\nThe answer is {answer}."
    if rng.random() < 0.25:
        prompt = frontier_prompt(Question("", "gsm8k", problem.question, str(answer)))
        return f"{prompt.completion} {body}"
    return f"Question: {problem.question}\nAnswer: {body}"


def _solution(rng: random.Random, held_out: frozenset[str]) -> str:
    return solution_text(_problem(rng, held_out), rng)


def _answer_only(rng: random.Random, held_out: frozenset[str]) -> str:
    problem = _problem(rng, held_out)
    return f"Question: {problem.question}\nAnswer: The answer is {problem.answer}."


def _corrupted(rng: random.Random, held_out: frozenset[str]) -> str:
    problem = _problem(rng, held_out)
    slips: dict[int, int] = {}
    for i in rng.sample(range(len(problem.steps)), rng.randint(1, min(2, len(problem.steps)))):
        slips[i] = rng.choice((-3, -2, -1, 1, 2, 3))
    if min(problem.values(slips)) < 0:  # a count cannot go negative: slip upwards instead
        slips = {i: abs(s) for i, s in slips.items()}
    return solution_text(problem, rng, slips)


def _arithmetic(rng: random.Random, held_out: frozenset[str]) -> str:
    lines = []
    for _ in range(rng.randint(3, 8)):
        op = rng.choice("+-*/")
        if op == "+":
            a = rng.randint(1, MAX_VALUE - 1)
            b = rng.randint(1, min(MAX_OPERAND, MAX_VALUE - a))
        elif op == "-":
            a = rng.randint(2, MAX_VALUE)
            b = rng.randint(1, min(MAX_OPERAND, a - 1))
        elif op == "*":
            b = rng.choice((2, 2, 3))
            a = rng.randint(1, MAX_VALUE // b)
        else:
            b, a = 2, 2 * rng.randint(1, MAX_VALUE // 2)
        lines.append(f"{a} {op} {b} = {apply(op, a, b)}")
    return "\n".join(lines)


_PROSE = (
    "{name} likes {item} very much.",
    "{name} keeps {n} {item} in a box.",
    "The shop near the park sells {item}.",
    "On Monday {name} met {friend} at school.",
    "{friend} counted {n} {item} on the table.",
    "There were {n} children in the garden.",
    "{name} walked {n} blocks to the market.",
    "{friend} and {name} played a game of cards.",
    "The {item} were red, blue and green.",
    "{name} put the {item} on a shelf.",
    "It rained for {n} days in a row.",
    "{friend} wrote a story about {item}.",
)


def _prose(rng: random.Random, held_out: frozenset[str]) -> str:
    name, _ = rng.choice(NAMES)
    friend = rng.choice([n for n, _ in NAMES if n != name])
    sentences = [
        rng.choice(_PROSE).format(
            name=name, friend=friend, item=rng.choice(ITEMS), n=rng.randint(2, MAX_VALUE)
        )
        for _ in range(rng.randint(3, 7))
    ]
    return " ".join(sentences)


WRITERS: dict[str, Callable[[random.Random, frozenset[str]], str]] = {
    "solution": _solution,
    "answer_only": _answer_only,
    "corrupted": _corrupted,
    "arithmetic": _arithmetic,
    "prose": _prose,
}
