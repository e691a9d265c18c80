"""Core tokens: the tokens a rationale's answer depends on, for the over-smoothing analysis.

The paper argues that full-rationale fine-tuning spreads its gradient over many easy tokens
(phrasing, connectives) and under-learns the few that carry the reasoning; training chunk by
chunk should shift learning toward them. "Core" here is defined on the text, so it means the
same for every tokenizer: numbers, names (capitalised words), quoted strings (last-letter's
words and letters), the coin's state and the yes/no answer, and answer choices like `(B)`. A
target token is core when its characters overlap a core span of the decoded target text.
Everything else (markers included) is the rest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from skipthink.batching import IGNORE_INDEX

CORE = re.compile(r"\d+|\b[A-Z][a-z]+\b|\"[^\"\n]*\"|\b(?:yes|no|heads|tails)\b|\([A-G]\)")
MARKER = re.compile(r"\[[^\]\s]{1,12}\]")  # chunk markers ([1], [answer], [thought]) are structure, never core


def core_mask(token_texts: Sequence[str]) -> list[bool]:
    """Per token: does it overlap a core span of the text the tokens spell?"""
    text = "".join(token_texts)
    core = [False] * len(text)
    for m in CORE.finditer(text):
        core[m.start() : m.end()] = [True] * (m.end() - m.start())
    for m in MARKER.finditer(text):
        core[m.start() : m.end()] = [False] * (m.end() - m.start())
    out, pos = [], 0
    for t in token_texts:
        out.append(any(core[pos : pos + len(t)]))
        pos += len(t)
    return out


@dataclass
class TokenGroupStats:
    """Mean per-token loss and mean probability of the gold token, for core tokens and the rest."""

    core_loss: float
    rest_loss: float
    core_confidence: float
    rest_confidence: float
    n_core: int
    n_rest: int

    def as_row(self) -> dict:
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@torch.no_grad()
def token_group_stats(model, tokenizer, batches: Iterable) -> TokenGroupStats:
    """Loss and confidence on the target tokens of `batches` (batching.Batch), split core / rest."""
    sums = {"core": [0.0, 0.0, 0], "rest": [0.0, 0.0, 0]}  # loss, confidence, count
    was_training = model.training
    model.eval()
    for batch in batches:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
        targets = batch.labels[:, 1:]
        for row_logits, row_targets in zip(logits, targets):
            keep = row_targets != IGNORE_INDEX
            if not keep.any():
                continue
            gold = row_targets[keep]
            logp = F.log_softmax(row_logits[keep], dim=-1).gather(1, gold[:, None])[:, 0]
            texts = tokenizer.batch_decode([[t] for t in gold.tolist()])  # one call per row, not per token
            for is_core, lp in zip(core_mask(texts), logp.tolist()):
                s = sums["core" if is_core else "rest"]
                s[0] -= lp
                s[1] += math.exp(lp)
                s[2] += 1
    if was_training:
        model.train()

    def mean(group: str, i: int) -> float:
        return sums[group][i] / max(sums[group][2], 1)

    return TokenGroupStats(mean("core", 0), mean("rest", 0), mean("core", 1), mean("rest", 1), sums["core"][2], sums["rest"][2])
