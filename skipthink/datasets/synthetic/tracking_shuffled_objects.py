"""Tracking shuffled objects (BIG-bench): follow a sequence of pairwise swaps.

Real format (BIG-bench `three_objects`, as Fine-tune-CoT formats it): the BIG-bench `input`
unstripped (so it ends "…, Alice has the " or "… is dancing with  "), then
"\nWhich choice is true? Answer choices: (A) x, (B) y, (C) z." with the choices in the order
of the initial assignment; the answer is a letter. All five BIG-bench story templates are here,
with the cast BIG-bench uses (Alice, Bob, Claire, Dave, Eve, Fred, Gertrude) and one swap per
object, as in the five- and seven-object variants; the item lists extend BIG-bench's.
`n_swaps` sets another number of swaps (one swap reads "First, …"; two "First, … Finally, …").
Difficulty: (objects, swaps).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Optional

from skipthink.datasets.synthetic.common import Generated, draw
from skipthink.config import SyntheticOptions

CAST = ("Alice", "Bob", "Claire", "Dave", "Eve", "Fred", "Gertrude")
LETTERS = "ABCDEFG"
_COLORS = ("black", "blue", "brown", "green", "orange", "pink", "purple", "red", "white", "yellow", "gray", "gold", "silver", "teal", "crimson", "indigo", "violet", "magenta", "turquoise", "beige")


@dataclass(frozen=True)
class Story:
    key: str
    opening: str  # "{cast} are …: " before the assignments
    holding: str  # how one person holds one item, e.g. "{person} has a {item}"
    middle: str  # between the assignments and the swaps
    swap: str  # verb phrase after "X and Y"
    ending: str  # "At the end of …, {person} …" (keeps BIG-bench's trailing spaces)
    items: tuple[str, ...]


STORIES = (
    Story(
        "ball",
        "{cast} are playing a game. At the start of the game, they are each holding a ball: ",
        "{person} has a {item}",
        " \n\nAs the game progresses, pairs of players trade balls. ",
        "swap balls",
        "At the end of the game, {person} has the ",
        tuple(f"{c} ball" for c in _COLORS),
    ),
    Story(
        "gift",
        "{cast} are holding a white elephant gift exchange. At the start of the event, they are each holding a present of a different color: ",
        "{person} has a {item}",
        " \n\nAs the event progresses, pairs of people swap gifts. ",
        "swap their gifts",
        "At the end of the event, {person} has the ",
        tuple(f"{c} present" for c in _COLORS) + ("black ball", "orange ball", "pink ball"),
    ),
    Story(
        "soccer",
        "{cast} are on the same team in a soccer match. At the start of the match, they are each assigned to a position: ",
        "{person} is playing {item}",
        " \n\nAs the game progresses, pairs of players occasionally swap positions. ",
        "trade positions",
        "At the end of the match, {person} is playing ",
        ("benchwarmer", "center midfielder", "cheerleader", "fullback", "goalkeeper", "left midfielder", "left winger", "right midfielder",
         "right winger", "striker", "sweeper", "left back", "right back", "center back", "attacking midfielder", "defensive midfielder"),
    ),
    Story(
        "books",
        "{cast} are friends and avid readers who occasionally trade books. At the start of the semester, they each buy one new book: ",
        "{person} gets {item}",
        " \n\nAs the semester proceeds, they start trading around the new books. ",
        "swap books",
        "At the end of the semester, {person} has  ",
        ("Catch-22", "Frankenstein", "Hound of the Baskervilles", "Lolita", "Moby Dick", "The Fellowship of the Ring", "The Great Gatsby",
         "The Odyssey", "The Pearl", "Ulysses", "Hamlet", "Dracula", "Jane Eyre", "The Hobbit", "Emma", "Beloved", "Middlemarch",
         "Anna Karenina", "War and Peace", "Don Quixote", "The Iliad", "Pride and Prejudice"),
    ),
    Story(
        "dance",
        "{cast} are dancers at a square dance. At the start of a song, they each have a partner: ",
        "{person} is dancing with {item}",
        " \n\nThroughout the song, the dancers often trade partners. ",
        "switch partners",
        "At the end of the dance, {person} is dancing with  ",
        ("Helga", "Izzi", "Jamie", "Karl", "Lola", "Melissa", "Ophelia", "Patrick", "Rodrigo", "Sam", "Nadia", "Quentin", "Ursula",
         "Xavier", "Yusuf", "Zelda", "Bruno", "Imogen", "Leon", "Mabel", "Otto", "Rosa"),
    ),
)
_STORY_BY_KEY = {s.key: s for s in STORIES}


def _cast_phrase(people: list[str]) -> str:
    return ", ".join(people[:-1]) + ", and " + people[-1]


def _assignments(story: Story, people: list[str], items: list[str]) -> str:
    parts = [story.holding.format(person=p, item=i) for p, i in zip(people, items)]
    return ", ".join(parts[:-1]) + ", and " + parts[-1] + "."


def _swap_sentences(story: Story, swaps: list[tuple[str, str]]) -> str:
    words = ["First"] + ["Then"] * (len(swaps) - 2) + ["Finally"]
    return " ".join(f"{w}, {a} and {b} {story.swap}." for w, (a, b) in zip(words, swaps))


def _apply_swaps(people: list[str], items: list[str], swaps: list[tuple[str, str]]) -> dict[str, str]:
    holding = dict(zip(people, items))
    for a, b in swaps:
        holding[a], holding[b] = holding[b], holding[a]
    return holding


def generate_one(rng: random.Random, options: SyntheticOptions) -> Generated:
    story = rng.choice(STORIES)
    n_objects = draw(rng, options.n_objects)
    n_swaps = n_objects if options.n_swaps is None else draw(rng, options.n_swaps)
    people = list(CAST[:n_objects])
    items = rng.sample(story.items, n_objects)
    swaps = [tuple(rng.sample(people, 2)) for _ in range(n_swaps)]
    target = rng.choice(people)
    final = _apply_swaps(people, items, swaps)
    letters = LETTERS[:n_objects]
    choices = ", ".join(f"({l}) {i}" for l, i in zip(letters, items))
    question = (
        story.opening.format(cast=_cast_phrase(people))
        + _assignments(story, people, items)
        + story.middle
        + _swap_sentences(story, swaps)
        + " "
        + story.ending.format(person=target)
        + f"\nWhich choice is true? Answer choices: {choices}."
    )
    answer = letters[items.index(final[target])]
    return Generated(question, answer, _facts(story.key, people, items, swaps, final, target, letters))


_FRAME = re.compile(
    r"(?P<cast>[A-Z][a-z]+(?:, [A-Z][a-z]+)*, and [A-Z][a-z]+) are .+?"
    r"\nWhich choice is true\? Answer choices: (?P<choices>.+)\.",
    re.S,
)
_CHOICE = re.compile(r"\(([A-G])\) (.+?)(?=, \([A-G]\) |$)")


def parse(question: str) -> Optional[dict]:
    """Story, assignments, swaps, target and answer letter, read back from the question text."""
    frame = _FRAME.fullmatch(question)
    if frame is None:
        return None
    people = re.split(r", (?:and )?", frame.group("cast"))
    choices = _CHOICE.findall(frame.group("choices"))
    items = [item for _, item in choices]
    letters = "".join(l for l, _ in choices)
    if len(items) != len(people) or letters != LETTERS[: len(people)]:
        return None
    for story in STORIES:
        head = story.opening.format(cast=frame.group("cast")) + _assignments(story, people, items) + story.middle
        if not question.startswith(head):
            continue
        tail = question[len(head):]
        swap_re = re.compile(rf"(First|Then|Finally), ([A-Z][a-z]+) and ([A-Z][a-z]+) {re.escape(story.swap)}\. ")
        swaps, pos = [], 0
        while (m := swap_re.match(tail, pos)) is not None:
            swaps.append((m.group(2), m.group(3)))
            pos = m.end()
        ending = re.match(re.escape(story.ending).replace(r"\{person\}", r"([A-Z][a-z]+)") + r"\n", tail[pos:])
        if not swaps or ending is None or ending.group(1) not in people:
            return None
        final = _apply_swaps(people, items, swaps)
        target = ending.group(1)
        return {**_facts(story.key, people, items, swaps, final, target, letters), "answer": letters[items.index(final[target])]}
    return None


def difficulty(facts: dict) -> tuple[int, int]:
    return len(facts["people"]), len(facts["swaps"])


def _facts(story_key, people, items, swaps, final, target, letters) -> dict:
    """The structured facts of one question (generator meta; what `parse` reads back)."""
    return {
        "story": story_key,
        "people": people,
        "initial": items,
        "swaps": [list(s) for s in swaps],
        "target": target,
        "final": [final[p] for p in people],
        "choice_letters": letters,
    }
