"""Greedy decoding for causal LMs: batched, left-padded, with a KV cache.

Why our own loop instead of `model.generate`: the pipeline decodes thousands of short
sequences on CPU, where per-step overhead dominates. This loop does one forward pass per step
for the whole batch, reuses the KV cache, drops finished rows from the batch (and the cache)
as soon as they stop, and reports per-sequence token counts and timings — all of which
`generate()` makes awkward. It is exact: left padding is masked out and positions are counted
per row, so each sequence gets the same tokens it would get alone (tested).

`generate_ids` knows only token ids; `generate` adds the tokenizer (prompt encoding, stop
strings, decoding). Batch size 1 is the latency mode: each sequence is timed on its own.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch


@dataclass(frozen=True)
class GeneratedIds:
    """One decoded sequence. `new_tokens` counts decode steps, including the stop token."""

    token_ids: list[int]  # generated tokens, the stop token (EOS / stop token) excluded
    new_tokens: int
    seconds: float  # wall-clock from the start of its batch until this sequence stopped
    stop_reason: str  # "eos" | "stop_token" | "stop_string" | "length"


@dataclass(frozen=True)
class Generation:
    text: str  # decoded new tokens, cut before any stop string
    token_ids: list[int]
    new_tokens: int
    seconds: float
    stop_reason: str


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def context_length(model) -> Optional[int]:
    cfg = model.config
    return getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)


def _last_logits_only(model) -> dict:
    """Ask for logits of the last position only, where the model supports it (prefill saves a
    prompt-length x vocabulary matmul)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


def _decode_mask_builder(model):
    """For one-token decode steps under SDPA attention, hand the model its 4D boolean mask
    ready-made: with a single query position nothing is causal, so the library's per-step mask
    construction (about a tenth of a decode step on a small model) is pure overhead. Other
    attention implementations want an additive float mask; they get the 2D mask as usual."""
    if getattr(model.config, "_attn_implementation", None) == "sdpa":
        return lambda mask: mask[:, None, None, :].bool()
    return lambda mask: mask


def _left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            ids[row, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
            mask[row, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def _generate_batch(
    model,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    eos_token_id: Optional[int],
    pad_token_id: int,
    stop_token_ids: frozenset[int],
    stop_check,
    min_new_tokens: int,
) -> list[GeneratedIds]:
    device = model_device(model)
    decode_mask = _decode_mask_builder(model)
    start = time.perf_counter()
    input_ids, attention_mask = _left_pad(prompts, pad_token_id, device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    last_only = _last_logits_only(model)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True, **last_only)
    cache, logits = out.past_key_values, out.logits[:, -1, :]
    next_pos = position_ids[:, -1:] + 1

    n = len(prompts)
    active = list(range(n))  # original row index of each row still in the batch
    tokens: list[list[int]] = [[] for _ in range(n)]
    results: list[Optional[GeneratedIds]] = [None] * n
    for step in range(max_new_tokens):
        if step < min_new_tokens and eos_token_id is not None:
            logits[:, eos_token_id] = float("-inf")
        chosen = logits.argmax(-1)
        keep: list[int] = []
        now = None
        for row, token in enumerate(chosen.tolist()):
            seq = active[row]
            reason = None
            if step >= min_new_tokens:
                if token == eos_token_id:
                    reason = "eos"
                elif token in stop_token_ids:
                    reason = "stop_token"
            if reason is None:
                tokens[seq].append(token)
                if step + 1 >= min_new_tokens and stop_check is not None and stop_check(tokens[seq]):
                    reason = "stop_string"
                elif step + 1 == max_new_tokens:
                    reason = "length"
            if reason is None:
                keep.append(row)
                continue
            now = now or time.perf_counter()
            results[seq] = GeneratedIds(tokens[seq], step + 1, now - start, reason)
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            chosen, attention_mask, next_pos = chosen[index], attention_mask[index], next_pos[index]
            active = [active[r] for r in keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=-1)
        out = model(
            input_ids=chosen[:, None], attention_mask=decode_mask(attention_mask), position_ids=next_pos, past_key_values=cache,
            use_cache=True, **last_only,
        )
        cache, logits = out.past_key_values, out.logits[:, -1, :]
        next_pos = next_pos + 1
    return results  # type: ignore[return-value]


def generate_ids(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_id: Optional[int],
    pad_token_id: Optional[int] = None,
    batch_size: int = 32,
    stop_token_ids: Sequence[int] = (),
    stop_check=None,
    min_new_tokens: int = 0,
    sort_by_length: bool = True,
) -> list[GeneratedIds]:
    """Greedy-decode every prompt; results come back in prompt order.

    Prompts too long for the context keep their last `context - max_new_tokens` tokens.
    `stop_check(generated_ids) -> bool` ends a sequence after the token that made it true.
    `min_new_tokens` suppresses EOS and every stop until that many tokens are written (the
    benchmark uses it to force equal work). Prompts are grouped by length (less padding)
    unless `sort_by_length=False`.
    """
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    pad = pad_token_id if pad_token_id is not None else (eos_token_id if eos_token_id is not None else 0)
    limit = context_length(model)
    if limit is not None:
        room = limit - max_new_tokens
        if room < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a {limit}-token context")
        prompts = [list(p)[-room:] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i])) if sort_by_length else list(range(len(prompts)))
    results: list[Optional[GeneratedIds]] = [None] * len(prompts)
    stops = frozenset(stop_token_ids)
    for lo in range(0, len(order), batch_size):
        batch = order[lo : lo + batch_size]
        outs = _generate_batch(model, [prompts[i] for i in batch], max_new_tokens, eos_token_id, pad, stops, stop_check, min_new_tokens)
        for i, out in zip(batch, outs):
            results[i] = out
    return results  # type: ignore[return-value]


def _stop_string_check(tokenizer, stop_strings: Sequence[str]):
    if not stop_strings:
        return None
    # A stop string can only be completed by the newest token, so decode a short tail.
    tail = max(len(s) for s in stop_strings) + 2

    def check(ids: list[int]) -> bool:
        text = tokenizer.decode(ids[-tail:], skip_special_tokens=False)
        return any(s in text for s in stop_strings)

    return check


def _cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stop_strings if s in text]
    return text[: min(cuts)] if cuts else text


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    stop_strings: Sequence[str] = (),
    stop_tokens: Sequence[str] = (),
) -> list[Generation]:
    """Greedy-decode text prompts; stops at EOS, any of `stop_tokens`, any of `stop_strings`.

    Special tokens (`[1]`, `[answer]`, …) stay in the decoded text: answer extraction needs them.
    """
    encoded = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in stop_tokens]
    outs = generate_ids(
        model,
        encoded,
        max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        batch_size=batch_size,
        stop_token_ids=stop_ids,
        stop_check=_stop_string_check(tokenizer, stop_strings),
    )
    results = []
    for out in outs:
        text = tokenizer.decode(out.token_ids, skip_special_tokens=False)
        if stop_strings:
            text = _cut_at_stop(text, stop_strings)
        results.append(Generation(text, out.token_ids, out.new_tokens, out.seconds, out.stop_reason))
    return results
