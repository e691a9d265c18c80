"""The scripted teacher: solves synthetic questions and writes text-davinci-002-style rationales.

Style taken from Fine-tune-CoT's recorded zero-shot-CoT completions: a leading " \\n\\n", a
restatement or set-up sentence, one sentence per reasoning step (one per line), then a summary
sentence. Phrasings are drawn per completion from a generator seeded by (config seed, question,
variant), so the same request always gets the same text. With probability `error_rate` one
step is wrong, and the wrong state carries through to a wrong answer.

`style` sets the granularity (seed paper 002: weaker students learn better from simpler,
finer-grained CoT). `default` is the style above. `fine` writes one fact per line with the
whole state after it, in one fixed phrasing: coin flip one flip per line with the coin's side;
last letters one name -> one letter per line with the letters so far; tracking every person's
item after each swap; arithmetic one operation per line with its result. `terse` writes the
fewest steps: the count of flips, the list of last letters, the final holdings, or the whole
expression with its value; then the summary.
"""

from __future__ import annotations

import random
import re
from typing import Optional

from skipthink.datasets.synthetic.multiarith import SHAPES
from skipthink.config import stable_hash
from skipthink.teacher.prompts import ANSWER_TRIGGER, ONE_STEP_INSTRUCTION, ZS_COT_TRIGGER, question_from_prompt
from skipthink.teacher_server.solvers import Trace, UnsolvableQuestion, detect_dataset, solve
from skipthink.teacher.tokens import truncate_to_tokens

STYLES = ("default", "fine", "terse")
_OP_WORD = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def _coin(trace: Trace, rng: random.Random) -> tuple[str, list[str], str]:
    setup = rng.choice(["The coin starts heads up.", "We start with the coin heads up.", "At the start, the coin is heads up."])
    steps = []
    for (name, flips), heads in zip(trace.facts["turns"], trace.steps):
        side = "heads up" if heads else "tails up"
        if flips:
            steps.append(rng.choice([
                f"{name} flips the coin, so the coin is now {side}.",
                f"{name} flips the coin. This means that the coin is now {side}.",
                f"{name} flips the coin, so it's now {side}.",
            ]))
        else:
            steps.append(rng.choice([
                f"{name} does not flip the coin, so the coin remains {side}.",
                f"{name} doesn't flip the coin, so it remains {side}.",
                f"{name} does not flip the coin. This means that the coin is still {side}.",
            ]))
    side = "heads up" if trace.answer == "yes" else "tails up"
    summary = rng.choice([
        f"So the final answer is that the coin is {side}.",
        f"So, the coin is {side}.",
        f"At the end, the coin is {side}.",
    ])
    return setup, steps, summary


def _last_letters(trace: Trace, rng: random.Random) -> tuple[str, list[str], str]:
    setup = rng.choice(["We need the last letter of each word.", "Let's look at the words one at a time.",
                        f'The words are "{" ".join(trace.facts["words"])}".'])
    form = rng.randrange(3)
    steps = []
    for word, letter in zip(trace.facts["words"], trace.steps):
        steps.append([f'The last letter of "{word}" is "{letter}".', f'"{word}" ends with "{letter}".',
                      f'{word}: the last letter is "{letter}".'][form])
    summary = rng.choice([f'So the final answer is "{trace.answer}".', f'If we put all those letters together, we get "{trace.answer}".',
                          f'After concatenating all the letters, we get "{trace.answer}".'])
    return setup, steps, summary


def _holding_list(state: dict, people: list[str]) -> str:
    parts = [f"{p} has the {state[p]}" for p in people]
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def _tracking(trace: Trace, rng: random.Random) -> tuple[str, list[str], str]:
    facts = trace.facts
    setup = rng.choice(["At the start", "In the beginning"]) + ", " + _holding_list(facts["initial"], facts["people"]) + "."
    steps = []
    for i, ((a, b), state) in enumerate(zip(facts["swaps"], trace.steps)):
        lead = "First" if i == 0 else "Finally" if i == len(facts["swaps"]) - 1 else "Then"
        steps.append(rng.choice([
            f"{lead}, {a} and {b} swap. This means that {a} now has the {state[a]} and {b} has the {state[b]}.",
            f"{lead}, {a} and {b} trade, so {a} has the {state[a]} and {b} has the {state[b]}.",
            f"{lead}, {a} and {b} switch. After the swap, {a} has the {state[a]} and {b} has the {state[b]}.",
        ]))
    target = facts["target"]
    item = trace.steps[-1][target]
    letter = facts["letters"][facts["items"].index(item)]
    summary = rng.choice([f"At the end, {target} has the {item}.", f"So {target} ends up with the {item}, which is ({letter}).",
                          f"At the end, {target} has the {item}. Therefore, the answer is ({letter})."])
    return setup, steps, summary


def _multiarith(trace: Trace, rng: random.Random, question: str) -> tuple[str, list[str], str]:
    first = re.split(r"(?<=[.?!])\s", question.strip())[0]
    setup = rng.choice([first, "Let's work through the numbers.", "We need to find the answer in a few steps."])
    steps = []
    for i, (op, x, y, value) in enumerate(trace.steps):
        sign = op
        steps.append(rng.choice([
            f"{'First' if i == 0 else 'Then'}, we {_OP_WORD[op]}: {x} {sign} {y} = {value}.",
            f"That means {x} {sign} {y} = {value}.",
            f"So we have {x} {sign} {y}, which is equal to {value}.",
        ]))
    summary = rng.choice([f"So the answer is {trace.answer}.", f"That means the answer is {trace.answer}.", f"In total, that is {trace.answer}."])
    return setup, steps, summary


# ---- fine and terse: one fixed phrasing, so the text varies only with the question ---------


def _side(heads: bool) -> str:
    return "heads up" if heads else "tails up"


def _coin_fine(trace: Trace) -> tuple[str, list[str], str]:
    steps = [f"{name} flips the coin, so the coin is {_side(heads)}." if flips else f"{name} does not flip the coin, so the coin is still {_side(heads)}."
             for (name, flips), heads in zip(trace.facts["turns"], trace.steps)]
    return "The coin starts heads up.", steps, f"So the coin is {_side(trace.answer == 'yes')}."


def _coin_terse(trace: Trace) -> tuple[str, list[str], str]:
    # the flips the trace counted (a wrong step counts one too many or too few)
    states = [True, *trace.steps]
    flips = sum(a != b for a, b in zip(states, states[1:]))
    return f"The coin is flipped {flips} {'time' if flips == 1 else 'times'}.", [], f"So the coin is {_side(trace.answer == 'yes')}."


def _last_letters_fine(trace: Trace) -> tuple[str, list[str], str]:
    steps, so_far = [], ""
    for word, letter in zip(trace.facts["words"], trace.steps):
        so_far += letter
        steps.append(f'"{word}" ends with "{letter}", so far "{so_far}".')
    return "We take the last letter of each name.", steps, f'So the answer is "{trace.answer}".'


def _last_letters_terse(trace: Trace) -> tuple[str, list[str], str]:
    return "The last letters are " + ", ".join(f'"{l}"' for l in trace.steps) + ".", [], f'So the answer is "{trace.answer}".'


def _tracking_summary(trace: Trace) -> str:
    facts = trace.facts
    target = facts["target"]
    item = trace.steps[-1][target]
    return f"At the end, {target} has the {item}, which is ({facts['letters'][facts['items'].index(item)]})."


def _tracking_fine(trace: Trace) -> tuple[str, list[str], str]:
    facts = trace.facts
    swaps = facts["swaps"]
    steps = []
    for i, ((a, b), state) in enumerate(zip(swaps, trace.steps)):
        lead = "First" if i == 0 else "Finally" if i == len(swaps) - 1 else "Then"
        steps.append(f"{lead}, {a} and {b} swap, so {_holding_list(state, facts['people'])}.")
    return "At the start, " + _holding_list(facts["initial"], facts["people"]) + ".", steps, _tracking_summary(trace)


def _tracking_terse(trace: Trace) -> tuple[str, list[str], str]:
    return "After all the swaps, " + _holding_list(trace.steps[-1], trace.facts["people"]) + ".", [], _tracking_summary(trace)


def _multiarith_fine(trace: Trace) -> tuple[str, list[str], str]:
    numbers = trace.facts["numbers"]
    setup = "The numbers are " + ", ".join(numbers[:-1]) + " and " + numbers[-1] + "."
    return setup, [f"{x} {op} {y} = {value}." for op, x, y, value in trace.steps], f"So the answer is {trace.answer}."


def _expression(expr, operands: dict[str, int], top: bool = True) -> str:
    if isinstance(expr, str):
        return str(operands[expr])
    op, left, right = expr
    text = f"{_expression(left, operands, False)} {op} {_expression(right, operands, False)}"
    return text if top else f"({text})"


def _multiarith_terse(trace: Trace) -> tuple[str, list[str], str]:
    facts = trace.facts
    return f"{_expression(SHAPES[facts['shape']], facts['operands'])} = {trace.answer}.", [], f"So the answer is {trace.answer}."


_DETERMINISTIC = {
    "fine": {"coin_flip": _coin_fine, "last_letter_concatenation": _last_letters_fine, "tracking_shuffled_objects": _tracking_fine,
             "multiarith": _multiarith_fine},
    "terse": {"coin_flip": _coin_terse, "last_letter_concatenation": _last_letters_terse, "tracking_shuffled_objects": _tracking_terse,
              "multiarith": _multiarith_terse},
}


def _write(trace: Trace, style: str, rng: random.Random, question: str) -> tuple[str, list[str], str]:
    """(set-up, steps, summary) of one rationale in `style`."""
    if style in _DETERMINISTIC:
        return _DETERMINISTIC[style][trace.dataset](trace)
    dataset = trace.dataset
    if dataset == "coin_flip":
        return _coin(trace, rng)
    if dataset == "last_letter_concatenation":
        return _last_letters(trace, rng)
    if dataset == "tracking_shuffled_objects":
        return _tracking(trace, rng)
    return _multiarith(trace, rng, question)


def _answer_phrase(dataset: str, answer: str) -> str:
    if dataset == "last_letter_concatenation":
        return f'"{answer}"'
    if dataset == "tracking_shuffled_objects":
        return f"({answer})"
    return answer


class ScriptedTeacher:
    def __init__(self, error_rate: float = 0.1, seed: int = 0, style: str = "default"):
        if style not in STYLES:
            raise ValueError(f"unknown rationale style {style!r}; choose one of {', '.join(STYLES)}")
        self.error_rate = error_rate
        self.seed = seed
        self.style = style

    def rationale(self, question: str, variant: int) -> tuple[str, str]:
        """(rationale text in zero-shot-CoT style, its answer) for one completion variant."""
        rng = random.Random(stable_hash(str(self.seed), question, str(variant)))
        trace = solve(question)
        wrong: Optional[int] = None
        if rng.random() < self.error_rate:
            wrong = rng.randrange(len(trace.steps))
            trace = solve(question, wrong)
        setup, steps, summary = _write(trace, self.style, rng, question)
        sep = rng.choice([" \n", "\n"]) if self.style == "default" else "\n"
        text = " \n\n" + sep.join([setup, *steps]) + "\n\n" + summary
        return text, trace.answer

    def complete(self, prompt: str, n: int, max_tokens: int, temperature: float) -> list[tuple[str, str]]:
        """n choices (text, finish_reason) for a prompt of any teacher template."""
        if prompt.endswith(ANSWER_TRIGGER):
            text = " " + self._answer_step(prompt) + "."
            return [truncate_to_tokens(text, max_tokens)] * n
        question = question_from_prompt(prompt)
        if question is None:
            raise UnsolvableQuestion("no 'Q: …\\nA:' question in the prompt")
        dataset = detect_dataset(question)
        out = []
        for i in range(n):
            # Greedy decoding gives every choice the same text; sampling varies the phrasing.
            text, answer = self.rationale(question, i if temperature > 0 else 0)
            if ONE_STEP_INSTRUCTION in prompt:
                text += f" Therefore, the answer is {_answer_phrase(dataset, answer)}."
            elif not prompt.rstrip().endswith(ZS_COT_TRIGGER):  # few-shot: Wei et al.'s one-line answers
                text = " " + " ".join(text.split()) + f" The answer is {_answer_phrase(dataset, answer)}."
            out.append(truncate_to_tokens(text, max_tokens))
        return out

    def _answer_step(self, prompt: str) -> str:
        """The answer the rationale in the prompt arrived at (so a wrong step gives a wrong answer)."""
        body = prompt[: -len(ANSWER_TRIGGER)]
        marker = f"\nA: {ZS_COT_TRIGGER}"
        cut = body.rfind(marker)
        if cut < 0:
            raise UnsolvableQuestion("answer prompt without the zero-shot-CoT rationale")
        question = question_from_prompt(body[: cut + len(marker)])
        rationale = body[cut + len(marker) :]
        if question is None:
            raise UnsolvableQuestion("no question in the answer prompt")
        dataset = detect_dataset(question)
        answer = read_answer(dataset, question, rationale)
        if answer is None:  # the rationale was cut before saying anything usable
            answer = solve(question).answer
        return _answer_phrase(dataset, answer)


def read_answer(dataset: str, question: str, rationale: str) -> Optional[str]:
    """The answer a (possibly truncated) scripted rationale states last."""
    if dataset == "coin_flip":
        sides = re.findall(r"heads up|tails up", rationale)
        return None if not sides else "yes" if sides[-1] == "heads up" else "no"
    if dataset == "last_letter_concatenation":
        quoted = re.findall(r'"([^"]*)"', rationale.rsplit("\n", 1)[-1])
        return quoted[-1] if quoted else None
    if dataset == "tracking_shuffled_objects":
        from skipthink.teacher_server.solvers import parse_tracking

        facts = parse_tracking(question)
        last = rationale.rstrip().rsplit("\n", 1)[-1]
        best = max(((last.rfind(item), letter) for item, letter in zip(facts["items"], facts["letters"])), default=(-1, None))
        return best[1] if best[0] >= 0 else None
    numbers = re.findall(r"-?\d+", rationale)
    return numbers[-1] if numbers else None
