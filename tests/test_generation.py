"""Batched greedy decoding must give every sequence exactly the tokens it gets alone."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from skipthink import formats
from skipthink.generation import generate, generate_ids

TEXTS = [
    "A coin is heads up. Tom flips the coin. Is the coin still heads up? ### [1] Tom flipped it. [2] So it is tails. [answer] no",
    "Take the last letters of each word in Ada Lovelace and concatenate them. ### [1] Ada ends with a. [2] Lovelace ends with e. [answer] ae",
]
PROMPTS = [
    "A coin is heads up.",
    "A coin is heads up. Tom flips the coin. Is the coin still heads up? ###",
    "Take the last letters",
    "Take the last letters of each word in Ada Lovelace and concatenate them. ### [1]",
    "Ada",
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A tiny byte-level BPE over TEXTS with the pipeline's markers (other tests reuse it)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", *formats.special_tokens(4)], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(TEXTS * 3, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_layer=2, n_embd=64, n_head=2, n_positions=128,
                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    return GPT2LMHeadModel(cfg).eval()


def encoded(tokenizer):
    return [tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]


def test_batched_equals_one_by_one_and_hf_generate(model, tokenizer):
    prompts = encoded(tokenizer)
    assert len({len(p) for p in prompts}) == len(prompts)  # all lengths differ: real left padding
    batched = generate_ids(model, prompts, max_new_tokens=12, eos_token_id=None, batch_size=8)
    single = [generate_ids(model, [p], max_new_tokens=12, eos_token_id=None, batch_size=1)[0] for p in prompts]
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    assert all(b.new_tokens == 12 and b.stop_reason == "length" for b in batched)
    for p, s in zip(prompts, single):
        ref = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long), max_new_tokens=12,
                             do_sample=False, eos_token_id=None, pad_token_id=tokenizer.pad_token_id)
        assert ref[0, len(p):].tolist() == s.token_ids


def test_rows_stop_at_eos_independently(model, tokenizer):
    prompts = encoded(tokenizer)
    free = generate_ids(model, prompts, max_new_tokens=10, eos_token_id=None)
    # Make the token prompt 1 writes at step 4 the EOS: it stops there (first occurrence),
    # the others stop wherever that token first appears, or run to the limit.
    eos = free[1].token_ids[3]
    stopped = generate_ids(model, prompts, max_new_tokens=10, eos_token_id=eos, pad_token_id=0, batch_size=3)
    for f, s in zip(free, stopped):
        if eos in f.token_ids:
            k = f.token_ids.index(eos)
            assert (s.token_ids, s.new_tokens, s.stop_reason) == (f.token_ids[:k], k + 1, "eos")
        else:
            assert (s.token_ids, s.new_tokens, s.stop_reason) == (f.token_ids, 10, "length")
    assert stopped[1].new_tokens <= 4
    assert all(s.seconds > 0 for s in stopped)


def test_min_new_tokens_forces_equal_work(model, tokenizer):
    prompts = encoded(tokenizer)
    free = generate_ids(model, prompts, max_new_tokens=6, eos_token_id=None)
    eos = free[0].token_ids[0]
    forced = generate_ids(model, prompts, max_new_tokens=6, eos_token_id=eos, min_new_tokens=6)
    assert [f.new_tokens for f in forced] == [6] * len(prompts)
    assert all(eos not in f.token_ids for f in forced)


def test_text_generation_stop_strings_and_tokens(model, tokenizer):
    free = generate(model, tokenizer, PROMPTS, max_new_tokens=10)
    text = free[1].text
    assert text == tokenizer.decode(free[1].token_ids)
    # A stop string taken from the middle of the free output cuts the text right before it.
    ids = free[1].token_ids
    stop = tokenizer.decode(ids[4:6])
    cut = generate(model, tokenizer, [PROMPTS[1]], max_new_tokens=10, stop_strings=[stop])[0]
    assert cut.stop_reason == "stop_string"
    assert cut.text == text[: text.find(stop)]
    # A stop token ends the sequence before it is written.
    stop_token = tokenizer.convert_ids_to_tokens(ids[2])
    by_token = generate(model, tokenizer, [PROMPTS[1]], max_new_tokens=10, stop_tokens=[stop_token])[0]
    assert by_token.token_ids == ids[: ids.index(ids[2])]
    assert by_token.stop_reason == "stop_token"


def test_overlong_prompt_keeps_its_tail(model, tokenizer):
    long = encoded(tokenizer)[1] * 20  # far beyond the 128-token context
    out = generate_ids(model, [long], max_new_tokens=8, eos_token_id=None)[0]
    tail = generate_ids(model, [long[-120:]], max_new_tokens=8, eos_token_id=None)[0]
    assert out.token_ids == tail.token_ids
