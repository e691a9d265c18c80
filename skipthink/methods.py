"""The six methods a run compares, as data: everything that branches on a method reads it here.

A method is defined by what it trains on and how it is prompted (docs/DESIGN.md §1):
- answer-only and FT train one segment per item (`{q} ###` → ` {a}` / ` {r} --> {a}`);
- the chunked methods train one segment per chunk plus the answer segment;
- STT and SkipALL build on CWT-SBC: they train a *fresh* student (the shared initial weights)
  on CWT-SBC's final chunkings, mixed with skip samples, and are prompted `[skip] {q} ###`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from skipthink.formats import ANSWER, FT_ARROW


@dataclass(frozen=True)
class Method:
    name: str
    chunked: bool  # trains chunk segments `[j] c_j` and the answer segment `[answer] a`
    needs_sbc: bool  # refreshes chunk boundaries by search before epochs
    skip_samples: Optional[Literal["searched", "all"]]  # skip masks from skip-data generation, or every chunk skipped
    answer_prefix: Optional[str]  # the marker after which the answer is written (None: the whole output)

    @property
    def skip_prompted(self) -> bool:
        """Prompted (and trained on skip samples) with the `[skip]` flag."""
        return self.skip_samples is not None

    @property
    def builds_on(self) -> Optional[str]:
        """The method whose trained run this one needs (its final chunkings, its skip checks)."""
        return "cwt-sbc" if self.skip_prompted else None


REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method("answer-only", chunked=False, needs_sbc=False, skip_samples=None, answer_prefix=None),
        Method("ft", chunked=False, needs_sbc=False, skip_samples=None, answer_prefix=FT_ARROW),
        Method("cwt-ac", chunked=True, needs_sbc=False, skip_samples=None, answer_prefix=ANSWER),
        Method("cwt-sbc", chunked=True, needs_sbc=True, skip_samples=None, answer_prefix=ANSWER),
        Method("stt", chunked=True, needs_sbc=False, skip_samples="searched", answer_prefix=ANSWER),
        Method("skipall", chunked=True, needs_sbc=False, skip_samples="all", answer_prefix=ANSWER),
    )
}
# Paper order: the order of every table and of `evaluation.methods` by default.
METHOD_NAMES = tuple(REGISTRY)
MethodName = Literal["answer-only", "ft", "cwt-ac", "cwt-sbc", "stt", "skipall"]


def method(name: str) -> Method:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHOD_NAMES)}") from None
