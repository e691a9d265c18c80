"""Solve the four synthetic datasets' questions, as the scripted teacher must.

Questions are read by the generators' own `parse` functions (skipthink/datasets/synthetic), the
inverse of the templates that write them: one home per question format. The generators write
the real benchmarks' formats, so the same parsers read every real Coin Flip, Last Letter and
Tracking question of Fine-tune-CoT's release (MultiArith's free-text stories only where they
follow a synthetic template).
Each solver returns a `Trace`: the states after each reasoning step and the answer, and can
inject one wrong step that propagates to a wrong answer (the scripted teacher's error model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from skipthink.datasets.synthetic import coin_flip, last_letter_concatenation, multiarith, tracking_shuffled_objects

_NUMBER = re.compile(r"\d")


class UnsolvableQuestion(ValueError):
    """Not one of the formats the scripted teacher knows."""


@dataclass
class Trace:
    dataset: str
    answer: str
    facts: dict = field(default_factory=dict)  # parsed question
    steps: list = field(default_factory=list)  # per reasoning step: the state after it
    wrong_step: Optional[int] = None


def _parsed(module, question: str, what: str) -> dict:
    facts = module.parse(question.strip())
    if facts is None:
        raise UnsolvableQuestion(f"not a {what} question")
    return facts


def solve_coin_flip(question: str, wrong_step: Optional[int] = None) -> Trace:
    facts = _parsed(coin_flip, question, "coin-flip")
    turns = list(zip(facts["people"], facts["flips"]))
    heads, steps = True, []
    for i, (_, flips) in enumerate(turns):
        # The wrong step misreads one person: a flip ignored or a non-flip applied.
        if flips != (i == wrong_step):
            heads = not heads
        steps.append(heads)
    return Trace("coin_flip", "yes" if heads else "no", {"turns": turns}, steps, wrong_step)


def solve_last_letters(question: str, wrong_step: Optional[int] = None) -> Trace:
    words = _parsed(last_letter_concatenation, question, "last-letter")["words"]
    letters = []
    for i, w in enumerate(words):
        letter = w[-1]
        if i == wrong_step:  # a slip: the second-to-last letter, or a neighbour in the alphabet
            letter = w[-2] if len(w) > 1 and w[-2].lower() != w[-1].lower() else chr((ord(w[-1].lower()) - 96) % 26 + 97)
        letters.append(letter)
    return Trace("last_letter_concatenation", "".join(letters), {"words": words}, letters, wrong_step)


def parse_tracking(question: str) -> dict:
    facts = _parsed(tracking_shuffled_objects, question, "tracking-shuffled-objects")
    people, items = facts["people"], facts["initial"]  # the choices list the initial assignment in order
    return {"people": people, "items": items, "letters": list(facts["choice_letters"]), "initial": dict(zip(people, items)),
            "swaps": [tuple(s) for s in facts["swaps"]], "target": facts["target"], "story": facts["story"]}


def solve_tracking(question: str, wrong_step: Optional[int] = None) -> Trace:
    facts = parse_tracking(question)
    swaps, target = facts["swaps"], facts["target"]
    if wrong_step is not None:
        # The person whose item at `wrong_step` ends with the target: corrupting them changes the answer.
        source = target
        for a, b in reversed(swaps[wrong_step + 1 :]):
            source = b if source == a else a if source == b else source
    state = dict(facts["initial"])
    steps = []
    for i, (a, b) in enumerate(swaps):
        state[a], state[b] = state[b], state[a]
        if i == wrong_step:
            # Misremember one exchange: `source` trades with a participant (or the swap is undone).
            other = a if source != a else b
            state[source], state[other] = state[other], state[source]
        steps.append(dict(state))
    final_item = state[target]
    letter = facts["letters"][facts["items"].index(final_item)]
    return Trace("tracking_shuffled_objects", letter, facts, steps, wrong_step)


def _evaluate(expr, operands: dict[str, int], steps: list[list], wrong_step: Optional[int], delta: int) -> int:
    if isinstance(expr, str):
        return operands[expr]
    op, left, right = expr
    x = _evaluate(left, operands, steps, wrong_step, delta)
    y = _evaluate(right, operands, steps, wrong_step, delta)
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x // y if y else 0}[op]
    if len(steps) == wrong_step:
        value += delta  # an arithmetic slip, carried into every later step
    steps.append([op, x, y, value])
    return value


def solve_multiarith(question: str, wrong_step: Optional[int] = None) -> Trace:
    facts = _parsed(multiarith, question, "synthetic-MultiArith-template")
    facts["numbers"] = re.findall(r"\d+", question)  # in the order the story mentions them
    expr, operands = multiarith.SHAPES[facts["shape"]], facts["operands"]
    correct = _evaluate(expr, operands, [], None, 0)
    steps: list[list] = []
    value = correct
    if wrong_step is None:
        _evaluate(expr, operands, steps, None, 0)
    else:
        for delta in (1, 2, 10, -1, 3, 5, 7, 9, 11, 13):
            steps = []
            value = _evaluate(expr, operands, steps, wrong_step, delta)
            if value != correct:
                break
    return Trace("multiarith", str(value), facts, steps, wrong_step)


SOLVERS = {
    "multiarith": solve_multiarith,
    "coin_flip": solve_coin_flip,
    "last_letter_concatenation": solve_last_letters,
    "tracking_shuffled_objects": solve_tracking,
}


def detect_dataset(question: str) -> str:
    q = question.strip()
    if q.startswith("A coin is heads up."):
        return "coin_flip"
    if q.startswith("Take the last letters of each words in"):
        return "last_letter_concatenation"
    if "Which choice is true? Answer choices:" in q:
        return "tracking_shuffled_objects"
    if _NUMBER.search(q):
        return "multiarith"
    raise UnsolvableQuestion("the scripted teacher knows coin_flip, last_letter_concatenation, tracking_shuffled_objects and multiarith questions")


def solve(question: str, wrong_step: Optional[int] = None) -> Trace:
    return SOLVERS[detect_dataset(question)](question, wrong_step)
