"""The study's benchmark: multi-step arithmetic word problems, generated from a seed.

A problem is a start value and 2-3 operations on it (buy, give away, double, halve...), told as a
short story; its worked solution restates the start and computes one step per line, then closes
with `The answer is N.` Every value stays between 1 and `MAX_VALUE`, so the arithmetic is a few
hundred facts a small transformer can learn in minutes on a CPU, while a tiny one cannot chain
them.

The held-out test questions are written in GSM8K's own file format (`gsm8k/test.jsonl`, rows
`{"question", "answer"}` with the reference solution ending `#### N`, ids the 0-based rows), so
`--data-dir` / `--metadata data_dir=` make the rBridge GSM8K machinery run on them unchanged. The
reference solution is terse (`7 + 5 = 12` per line), as GSM8K's are: the frontier's traces are
worded differently, which is what separates the gold-NLL baseline from the trace-based metrics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MAX_VALUE = 20
MAX_OPERAND = 5
NAMES = (
    ("Ava", "She"), ("Ben", "He"), ("Cara", "She"), ("Dan", "He"), ("Eli", "He"),
    ("Fay", "She"), ("Gus", "He"), ("Hana", "She"), ("Ivan", "He"), ("Jade", "She"),
    ("Kai", "He"), ("Lena", "She"), ("Mia", "She"), ("Noah", "He"), ("Omar", "He"),
    ("Pia", "She"), ("Rosa", "She"), ("Sam", "He"), ("Tara", "She"), ("Vic", "He"),
)  # fmt: skip
ITEMS = (
    "apples", "marbles", "stickers", "coins", "books", "shells", "pencils", "cards", "eggs",
    "stamps", "beads", "plums", "cookies", "buttons", "rocks", "ribbons",
)  # fmt: skip


@dataclass(frozen=True)
class Step:
    op: str  # "+", "-", "*", "/"
    operand: int
    story: str  # the question's sentence
    reason: str  # the worked solution's words before the equation


@dataclass(frozen=True)
class Problem:
    name: str
    pronoun: str
    item: str
    start: int
    steps: tuple[Step, ...]

    def values(self, slips: dict[int, int] | None = None) -> list[int]:
        """The running value after each step; `slips` adds an error to a step's result, which
        the later steps then carry (a corrupted solution computes on from its mistake)."""
        values, value = [], self.start
        for i, step in enumerate(self.steps):
            value = apply(step.op, value, step.operand) + (slips or {}).get(i, 0)
            values.append(value)
        return values

    @property
    def answer(self) -> int:
        return self.values()[-1]

    @property
    def question(self) -> str:
        story = " ".join(step.story for step in self.steps)
        return (
            f"{self.name} has {self.start} {self.item}. {story} "
            f"How many {self.item} does {self.name} have now?"
        )

    def solution(self, slips: dict[int, int] | None = None) -> str:
        """The worked solution (`slips`: the corrupted one) without its answer line."""
        lines = [f"{self.name} starts with {self.start} {self.item}."]
        before = self.start
        for step, after in zip(self.steps, self.values(slips), strict=True):
            lines.append(f"{step.reason}, so {before} {step.op} {step.operand} = {after}.")
            before = after
        return "\n".join(lines)

    def reference(self) -> str:
        """GSM8K's answer field: terse equations, then `#### N`."""
        lines, before = [], self.start
        for step, after in zip(self.steps, self.values(), strict=True):
            lines.append(f"{before} {step.op} {step.operand} = {after}")
            before = after
        return "\n".join(lines) + f"\n#### {self.answer}"


def apply(op: str, value: int, operand: int) -> int:
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    if op == "*":
        return value * operand
    return value // operand


def random_problem(rng: random.Random, min_steps: int = 2, max_steps: int = 3) -> Problem:
    name, pronoun = rng.choice(NAMES)
    friend = rng.choice([n for n, _ in NAMES if n != name])
    item = rng.choice(ITEMS)
    start = rng.randint(2, 20)
    steps, value = [], start
    for _ in range(rng.randint(min_steps, max_steps)):
        step = _random_step(rng, value, pronoun, name, friend, item)
        steps.append(step)
        value = apply(step.op, value, step.operand)
    return Problem(name, pronoun, item, start, tuple(steps))


def _random_step(
    rng: random.Random, value: int, pronoun: str, name: str, friend: str, item: str
) -> Step:
    possible = []
    if value + 1 <= MAX_VALUE:
        possible.append("+")
    if value >= 2:
        possible.append("-")
    if value * 2 <= MAX_VALUE:
        possible.append("*")
    if value % 2 == 0:
        possible.append("/")
    op = rng.choice(possible)
    if op == "+":
        n = rng.randint(1, min(MAX_OPERAND, MAX_VALUE - value))
        story, reason = rng.choice(
            (
                (f"{pronoun} buys {n} more {item}.", f"{pronoun} buys {n} more"),
                (f"{pronoun} finds {n} more {item}.", f"{pronoun} finds {n} more"),
                (f"{friend} gives {name} {n} {item}.", f"{friend} gives {n} more"),
            )
        )
    elif op == "-":
        n = rng.randint(1, min(MAX_OPERAND, value - 1))
        story, reason = rng.choice(
            (
                (f"{pronoun} gives {n} {item} to {friend}.", f"{pronoun} gives away {n}"),
                (f"{pronoun} loses {n} {item}.", f"{pronoun} loses {n}"),
                (f"{pronoun} sells {n} {item}.", f"{pronoun} sells {n}"),
            )
        )
    elif op == "*":
        n = 3 if value * 3 <= MAX_VALUE and rng.random() < 0.3 else 2
        word = "triples" if n == 3 else "doubles"
        story, reason = (
            f"Then {pronoun.lower()} {word} the number of {item}.",
            f"{pronoun} {word} them",
        )
    else:
        n = 2
        story, reason = (
            f"{pronoun} gives half of the {item} to {friend}.",
            f"{pronoun} keeps half",
        )
    return Step(op, n, story, reason)


def held_out_problems(seed: int, count: int) -> list[Problem]:
    """`count` distinct test questions."""
    rng = random.Random(f"test-{seed}")
    problems, seen = [], set()
    while len(problems) < count:
        problem = random_problem(rng)
        if problem.question not in seen:
            seen.add(problem.question)
            problems.append(problem)
    return problems
