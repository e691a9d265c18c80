"""MultiArith-style word problems: two arithmetic steps (three with `arith_steps=3`).

Real format (MAWPS MultiArith, `sQuestion.strip()`): one line, three numbers, one of five
equation shapes — (a+b)-c, a*(b+c), (a+b)/c, a*(b-c), (a-b)/c — and a whole-number answer
("39"). The stories here are written in the same register, several per shape, with names,
items and numbers drawn per question; every intermediate result is a positive whole number
and divisions are exact, as in the real data. `operand_digits` scales the numbers: operands
have up to that many digits (most have exactly that many) under the same constraints.
Difficulty: (operations, digits of the largest number in the solution).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Optional, Union

from skipthink.datasets.synthetic import names
from skipthink.datasets.synthetic.common import Generated, draw
from skipthink.config import SyntheticOptions

Expr = Union[str, tuple]  # an operand name, or (op, left, right)

SHAPES: dict[str, Expr] = {
    "(a+b)-c": ("-", ("+", "a", "b"), "c"),
    "a*(b+c)": ("*", "a", ("+", "b", "c")),
    "(a+b)/c": ("/", ("+", "a", "b"), "c"),
    "a*(b-c)": ("*", "a", ("-", "b", "c")),
    "(a-b)/c": ("/", ("-", "a", "b"), "c"),
    "((a+b)-c)-d": ("-", ("-", ("+", "a", "b"), "c"), "d"),
    "a*(b+c)-d": ("-", ("*", "a", ("+", "b", "c")), "d"),
    "((a+b)-c)/d": ("/", ("-", ("+", "a", "b"), "c"), "d"),
    "a*(b-c)+d": ("+", ("*", "a", ("-", "b", "c")), "d"),
}


def _sample_operands(shape: str, rng: random.Random) -> dict[str, int]:
    r = rng.randint
    if shape == "(a+b)-c":
        a, b = r(2, 50), r(2, 50)
        return {"a": a, "b": b, "c": r(1, a - 1)}
    if shape == "a*(b+c)":
        return {"a": r(2, 12), "b": r(1, 15), "c": r(1, 15)}
    if shape == "(a+b)/c":
        c = r(2, 9)
        total = c * r(2, 12)
        a = r(1, total - 1)
        return {"a": a, "b": total - a, "c": c}
    if shape == "a*(b-c)":
        c = r(1, 15)
        return {"a": r(2, 12), "b": c + r(1, 12), "c": c}
    if shape == "(a-b)/c":
        c, b = r(2, 9), r(1, 40)
        return {"a": b + c * r(1, 12), "b": b, "c": c}
    if shape == "((a+b)-c)-d":
        a, b = r(2, 50), r(2, 50)
        c = r(1, a - 1)
        return {"a": a, "b": b, "c": c, "d": r(1, a + b - c - 1)}
    if shape == "a*(b+c)-d":
        a, b, c = r(2, 10), r(1, 12), r(1, 12)
        return {"a": a, "b": b, "c": c, "d": r(1, a * (b + c) - 1)}
    if shape == "((a+b)-c)/d":
        d, c = r(2, 9), r(1, 40)
        total = d * r(2, 10) + c
        a = r(1, total - 1)
        return {"a": a, "b": total - a, "c": c, "d": d}
    if shape == "a*(b-c)+d":
        c = r(1, 12)
        return {"a": r(2, 10), "b": c + r(1, 10), "c": c, "d": r(1, 30)}
    raise ValueError(f"unknown shape {shape!r}")


def _sample_digits(shape: str, rng: random.Random, digits: int) -> dict[str, int]:
    """Operands of up to `digits` digits: whole, positive intermediates and exact divisions."""
    hi = 10**digits - 1
    lo = 10 ** (digits - 1)
    r = rng.randint

    def big() -> int:  # a full-width operand (at least 2, so products and quotients are not trivial)
        return r(max(2, lo), hi)

    def split(total: int) -> tuple[int, int]:  # a + b = total with both operands in range
        a = r(max(1, total - hi), min(hi, total - 1))
        return a, total - a

    if shape == "(a+b)-c":
        a = big()
        return {"a": a, "b": big(), "c": r(1, a - 1)}
    if shape == "a*(b+c)":
        return {"a": big(), "b": r(lo, hi), "c": r(lo, hi)}
    if shape == "(a+b)/c":
        c = big()
        a, b = split(c * r(2, max(2, 2 * hi // c)))
        return {"a": a, "b": b, "c": c}
    if shape == "a*(b-c)":
        c = r(lo, hi - 1)
        return {"a": big(), "b": r(c + 1, hi), "c": c}
    if shape == "(a-b)/c":
        c = r(2, max(2, hi // 2))
        q = r(1, (hi - 1) // c)
        b = r(1, hi - c * q)
        return {"a": b + c * q, "b": b, "c": c}
    if shape == "((a+b)-c)-d":
        a, b = big(), big()
        c = r(1, a - 1)
        return {"a": a, "b": b, "c": c, "d": r(1, min(hi, a + b - c - 1))}
    if shape == "a*(b+c)-d":
        a, b, c = big(), r(lo, hi), r(lo, hi)
        return {"a": a, "b": b, "c": c, "d": r(1, min(hi, a * (b + c) - 1))}
    if shape == "((a+b)-c)/d":
        d, c = r(2, max(2, hi // 2)), r(1, hi)
        a, b = split(d * r(2, (2 * hi - c) // d) + c)
        return {"a": a, "b": b, "c": c, "d": d}
    if shape == "a*(b-c)+d":
        c = r(lo, hi - 1)
        return {"a": big(), "b": r(c + 1, hi), "c": c, "d": r(lo, hi)}
    raise ValueError(f"unknown shape {shape!r}")


def evaluate(expr: Expr, operands: dict[str, int], steps: list[list]) -> int:
    """Value of `expr`; appends each operation as [op, left, right, result] in solving order."""
    if isinstance(expr, str):
        return operands[expr]
    op, left, right = expr
    x, y = evaluate(left, operands, steps), evaluate(right, operands, steps)
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x // y}[op]
    steps.append([op, x, y, value])
    return value


@dataclass(frozen=True)
class Story:
    shape: str
    text: str  # slots: {name} {he} {He} {his} {him}, operands {a}..{d}, one item slot {x}
    items: tuple[str, ...] = ()


STORIES = (
    # (a+b)-c
    Story("(a+b)-c", "{name} had {a} {x}. If {he} gave away {c} of them and then got {b} more, how many {x} would {he} have?",
          ("stickers", "marbles", "baseball cards", "pencils", "toy cars", "seashells", "stamps")),
    Story("(a+b)-c", "For the school bake sale {name} made pastries. {He} baked {a} cupcakes and {b} cookies. After the sale {he} had {c} to take back home. How many pastries did {he} sell?"),
    Story("(a+b)-c", "A waiter had {a} customers to wait on. If {c} customers left and he got another {b} customers, how many customers would he have?"),
    Story("(a+b)-c", "{name} was trying to expand {his} {x} collection. {He} bought {a} {x}s from a friend and bought {b} more at a garage sale. If {c} of the {x}s didn't work, how many good {x}s did {he} end up with?",
          ("game", "video game", "board game", "puzzle", "DVD")),
    Story("(a+b)-c", "There were {a} girls and {b} boys trying out for the school's {x} team. If only {c} of them got called back, how many students didn't make the cut?",
          ("basketball", "soccer", "volleyball", "chess", "debate", "swim")),
    Story("(a+b)-c", "{name} picked {a} {x} in the morning and {b} {x} in the afternoon. If {he} gave {c} of them to {his} neighbor, how many {x} does {he} have left?",
          ("apples", "strawberries", "tomatoes", "flowers", "peaches")),
    Story("(a+b)-c", "{name} had {a} dollars in January. By March {he} had spent {c} dollars. If {he} got another {b} dollars from {his} mom, how much money would {he} have?"),
    # a*(b+c)
    Story("a*(b+c)", "A pet store has {a} bird cages. If each cage has {b} parrots and {c} parakeets in it, how many birds does the pet store have total?"),
    Story("a*(b+c)", "{name} was putting {his} spare change into piles. {He} had {b} piles of quarters and {c} piles of dimes. If each pile had {a} coins in it, how many coins did {he} have total?"),
    Story("a*(b+c)", "{name} bought {b} new chairs and {c} new tables for {his} house. If {he} spent {a} minutes on each piece of furniture putting it together, how many minutes did it take {him} to finish?"),
    Story("a*(b+c)", "{name} was collecting cans for recycling. On Saturday {he} filled {b} bags up and on Sunday {he} filled {c} more bags. If each bag had {a} cans in it, how many cans did {he} pick up total?"),
    Story("a*(b+c)", "Each box of {x} holds {a} pieces. {name} bought {b} boxes on Monday and {c} boxes on Tuesday. How many pieces did {he} buy in all?",
          ("crayons", "chocolates", "markers", "candles", "crackers")),
    Story("a*(b+c)", "{name} earned {a} points for each {x} {he} found. If {he} found {b} on the first level and {c} on the second level, how many points did {he} earn?",
          ("treasure", "coin", "star", "gem", "key")),
    # (a+b)/c
    Story("(a+b)/c", "{name} was organizing {his} {x} in a binder with {c} on each page. If {he} had {a} new {x} and {b} old {x} to put in the binder, how many pages would {he} use?",
          ("baseball cards", "stamps", "stickers", "photos")),
    Story("(a+b)/c", "{name} was making baggies of cookies with {c} cookies in each bag. If {he} had {a} chocolate chip cookies and {b} oatmeal cookies, how many baggies could {he} make?"),
    Story("(a+b)/c", "{name} made {a} dollars mowing lawns and {b} dollars weed eating. If {he} only spent {c} dollars a week, how long would the money last {him}?"),
    Story("(a+b)/c", "At the arcade {name} won {a} tickets playing whack-a-mole and {b} tickets playing skee ball. If {he} was trying to buy candy that cost {c} tickets a piece, how many could {he} buy?"),
    Story("(a+b)/c", "{name} had {a} {x} and {his} friend gave {him} {b} more. If {he} puts them into bags with {c} in each bag, how many bags does {he} need?",
          ("marbles", "candies", "buttons", "beads", "erasers")),
    Story("(a+b)/c", "A class has {a} girls and {b} boys. If the teacher splits the class into teams of {c} students, how many teams will there be?"),
    # a*(b-c)
    Story("a*(b-c)", "A painter needed to paint {b} rooms in a building. Each room takes {a} hours to paint. If he already painted {c} rooms, how much longer will he take to paint the rest?"),
    Story("a*(b-c)", "{name} earned {a} points for each bag of cans {he} recycled. If {he} had {b} bags, but didn't recycle {c} of them, how many points would {he} have earned?"),
    Story("a*(b-c)", "In a video game, each enemy defeated gives you {a} points. If a level has {b} enemies total and you destroy all but {c} of them, how many points would you earn?"),
    Story("a*(b-c)", "At a restaurant each adult meal costs ${a} and kids eat free. If a group of {b} people came in and {c} were kids, how much would it cost for the group to eat?"),
    Story("a*(b-c)", "A worksheet had {a} problems on it. If a teacher had {b} worksheets to grade and had already graded {c} of them, how many more problems does she have to grade?"),
    Story("a*(b-c)", "Each {x} in a box cost ${a}. If a box had {b} {x}s total and {name} sold all but {c} of them, how much money would {he} have made?",
          ("chocolate bar", "candle", "soap bar", "cookie tin")),
    # (a-b)/c
    Story("(a-b)/c", "For Halloween {name} received {a} pieces of candy. {He} ate {b} pieces then placed the rest into piles with {c} in each pile. How many piles could {he} make?"),
    Story("(a-b)/c", "{name} had {a} homework problems. {He} finished {b} of them but still had {c} pages of problems to do. If each page has the same number of problems on it, how many problems are on each page?"),
    Story("(a-b)/c", "{name} had {a} {x}. If {he} used {b} of them to make lunch and put the rest into bags with {c} in each bag, how many bags did {he} fill?",
          ("potatoes", "carrots", "onions", "apples", "eggs")),
    Story("(a-b)/c", "{name} had {a} dollars. {He} spent {b} dollars on a new game. With the money {he} had left, how many {c} dollar toys could {he} buy?"),
    Story("(a-b)/c", "There are {a} students in a class. If {b} of them went on a field trip and the rest were split into groups of {c}, how many groups were there?"),
    # three steps
    Story("((a+b)-c)-d", "{name} had {a} {x}. {He} got {b} more from {his} friend. Then {he} gave {c} to {his} sister and lost {d}. How many {x} does {he} have now?",
          ("stickers", "marbles", "pencils", "seashells")),
    Story("((a+b)-c)-d", "A library had {a} books. On Monday it bought {b} more books. On Tuesday {c} books were checked out and on Wednesday {d} more were checked out. How many books are still in the library?"),
    Story("a*(b+c)-d", "Each box of {x} holds {a} pieces. {name} bought {b} boxes on Monday and {c} boxes on Tuesday. If {he} gave away {d} pieces, how many pieces does {he} have left?",
          ("crayons", "chocolates", "markers")),
    Story("a*(b+c)-d", "A farmer has {a} baskets. Each basket has {b} red apples and {c} green apples. If {d} of the apples went bad, how many good apples does the farmer have?"),
    Story("((a+b)-c)/d", "For the school bake sale {name} baked {a} cupcakes and {b} cookies. {He} sold {c} of them and packed the rest into boxes with {d} in each box. How many boxes did {he} fill?"),
    Story("((a+b)-c)/d", "{name} made {a} dollars mowing lawns and {b} dollars weed eating. {He} spent {c} dollars on a new rake. If {he} spends {d} dollars a week, how many weeks would the rest of the money last {him}?"),
    Story("a*(b-c)+d", "In a video game, each enemy defeated gives you {a} points. If a level has {b} enemies total and you destroy all but {c} of them, and you also get a bonus of {d} points, how many points would you earn?"),
    Story("a*(b-c)+d", "A painter needs to paint {b} rooms and has already painted {c} of them. Each room takes {a} hours to paint, and cleaning up takes {d} more hours. How many more hours will the painter work?"),
)
TWO_STEP_SHAPES = ("(a+b)-c", "a*(b+c)", "(a+b)/c", "a*(b-c)", "(a-b)/c")
_PRONOUNS = {
    "female": {"he": "she", "He": "She", "his": "her", "him": "her"},
    "male": {"he": "he", "He": "He", "his": "his", "him": "him"},
}
_SLOT = re.compile(r"\{(\w+)\}")
_ONE_WORD = {"female": tuple(n for n in names.FEMALE if " " not in n), "male": tuple(n for n in names.MALE if " " not in n)}


def stories_for(arith_steps: int) -> tuple[Story, ...]:
    return tuple(s for s in STORIES if (s.shape in TWO_STEP_SHAPES) == (arith_steps == 2))


def generate_one(rng: random.Random, options: SyntheticOptions) -> Generated:
    story = rng.choice(stories_for(draw(rng, options.arith_steps)))
    gender = rng.choice(("female", "male"))
    if options.operand_digits is None:
        operands = _sample_operands(story.shape, rng)
    else:
        operands = _sample_digits(story.shape, rng, draw(rng, options.operand_digits))
    slots = {"name": rng.choice(_ONE_WORD[gender]), "x": rng.choice(story.items) if story.items else "", **_PRONOUNS[gender]}
    slots.update({k: str(v) for k, v in operands.items()})
    question = _SLOT.sub(lambda m: slots[m.group(1)], story.text)
    steps: list[list] = []
    answer = evaluate(SHAPES[story.shape], operands, steps)
    meta = {"shape": story.shape, "operands": operands, "steps": steps, "story": STORIES.index(story)}
    return Generated(question, str(answer), meta)


def _story_pattern(story: Story) -> re.Pattern:
    pieces, seen, pos = [], set(), 0
    for m in _SLOT.finditer(story.text):
        pieces.append(re.escape(story.text[pos:m.start()]))
        slot = m.group(1)
        if slot in ("he", "He", "his", "him"):
            pieces.append("(?:" + "|".join(sorted({p[slot] for p in _PRONOUNS.values()})) + ")")
        elif slot in seen:
            pieces.append(f"(?P={slot})")
        else:
            seen.add(slot)
            pieces.append(rf"(?P<{slot}>\d+)" if slot in "abcd" else rf"(?P<{slot}>[^.?]+?)")
        pos = m.end()
    pieces.append(re.escape(story.text[pos:]))
    return re.compile("".join(pieces))


_PATTERNS = [(story, _story_pattern(story)) for story in STORIES]


def parse(question: str) -> Optional[dict]:
    """Shape, operands, solving steps and answer, read back from a generated question's text."""
    for index, (story, pattern) in enumerate(_PATTERNS):
        match = pattern.fullmatch(question)
        if match is None:
            continue
        operands = {k: int(match.group(k)) for k in "abcd" if k in pattern.groupindex}
        steps: list[list] = []
        answer = evaluate(SHAPES[story.shape], operands, steps)
        return {"shape": story.shape, "operands": operands, "steps": steps, "story": index, "answer": str(answer)}
    return None


def difficulty(facts: dict) -> tuple[int, int]:
    numbers = [*facts["operands"].values(), *(value for *_, value in facts["steps"])]
    return len(facts["steps"]), max(len(str(n)) for n in numbers)
