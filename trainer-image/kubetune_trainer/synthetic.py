"""Built-in synthetic tasks with exact answers, and the tiny model's pre-training corpus.

The corpus states the same facts in a plain form ("23 + 45 = 68", "abc reversed is
cba"); the tasks ask for them as instructions ("Q: What is 23 plus 45?"). So a
fine-tune has to adapt what the pre-trained model knows to a new format, the way
instruction tuning does on real models, and exact-match accuracy shows it.
"""

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from kubetune.spec.hub import SYNTHETIC_PREFIX

TASKS = ("arithmetic", "reverse")
PREFIX = SYNTHETIC_PREFIX
_LETTERS = string.ascii_lowercase[:8]
_SEED = 1234
# Small enough that the tiny model's half-minute pre-training learns a good part of the facts.
_OPERANDS = range(40)
_WORDS = 3000
_TEST_SIZE = 300
# Every Nth train problem is also in the pre-training corpus in instruction form.
_INSTRUCTION_STRIDE = 4


@dataclass(frozen=True)
class Example:
    """A prompt and the response to learn; prompt-less examples are plain text."""

    prompt: str
    response: str

    @property
    def has_answer(self) -> bool:
        return bool(self.prompt)


@dataclass(frozen=True)
class _Problem:
    instruction: str  # what the fine-tuning task asks
    fact: str  # the plain statement in the pre-training corpus
    answer: str
    terse: str  # the instruction in symbols, as some pre-training text has it


def _arithmetic() -> list[_Problem]:
    problems = []
    for a in _OPERANDS:
        for b in _OPERANDS:
            problems.append(
                _Problem(
                    f"What is {a} plus {b}?", f"{a} + {b} = {a + b}", str(a + b), f"{a} + {b}?"
                )
            )
            if a >= b:
                problems.append(
                    _Problem(
                        f"What is {a} minus {b}?", f"{a} - {b} = {a - b}", str(a - b), f"{a} - {b}?"
                    )
                )
    return problems


def _reverse() -> list[_Problem]:
    rng = random.Random(_SEED)
    words: set[str] = set()
    while len(words) < _WORDS:
        words.add("".join(rng.choices(_LETTERS, k=rng.randint(3, 5))))
    return [
        _Problem(f"Reverse the word {w}.", f"{w} reversed is {w[::-1]}", w[::-1], f"{w} <-")
        for w in sorted(words)
    ]


_BUILDERS: dict[str, Callable[[], list[_Problem]]] = {
    "arithmetic": _arithmetic,
    "reverse": _reverse,
}


def _problems(task: str) -> list[_Problem]:
    problems = _BUILDERS[task]()
    random.Random(_SEED).shuffle(problems)
    return problems


def format_prompt(instruction: str) -> str:
    return f"Q: {instruction}\nA:"


def task_split(task: str, split: str) -> list[Example]:
    """The task's fixed `train` or `test` split (test: the first 300 shuffled problems)."""
    if task not in _BUILDERS:
        raise KeyError(task)
    problems = _problems(task)
    chosen = problems[:_TEST_SIZE] if split == "test" else problems[_TEST_SIZE:]
    return [Example(format_prompt(p.instruction), f" {p.answer}") for p in chosen]


def pretraining_corpus() -> list[str]:
    """Plain statements of every task's facts, plus some terse questions, interleaved.

    A quarter of the train problems also appears as a terse question and answer
    ("Q: 23 + 17?\nA: 40"): the base model knows the Q/A layout, but not the wording
    of the tasks ("What is 23 plus 17?"), which fine-tuning has to teach. Test
    problems appear only as plain facts.
    """
    lines: list[str] = []
    for task in TASKS:
        problems = _problems(task)
        lines.extend(p.fact for p in problems)
        shown = problems[_TEST_SIZE::_INSTRUCTION_STRIDE]
        lines.extend(f"{format_prompt(p.terse)} {p.answer}" for p in shown)
    random.Random(_SEED).shuffle(lines)
    return lines
