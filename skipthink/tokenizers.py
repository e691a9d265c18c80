"""How a scratch student's BPE splits text before merging (`student.tokenizer`).

The byte-level BPE (`bpe`) lets merges hide what a small model must see: a name's last letter
sits inside a multi-letter piece, a number is one or two arbitrary pieces, and a word has one id
after a space and another at a line start. The other two kinds fix that in the pre-tokenizer,
so every kind is still one `tokenizers` BPE (trained in `student.train_tokenizer`) that wraps
as a `PreTrainedTokenizerFast` and round-trips through `save_pretrained` / `AutoTokenizer`:

- `char`: every character is its own piece, so the vocabulary is the characters of the run's
  text (a multi-byte character seen in it merges back to one token).
- `bpe_split`: BPE inside words, but each whitespace character and each punctuation mark is its
  own token (so a word has the same ids wherever it stands), every digit is its own token, and
  the letters of a double-quoted span are one token each (last-letter questions quote their
  names). A text that is one lowercase word on its own, which is how an answer follows
  `[answer]` / `-->` (markers cut the text before pre-tokenisation), is split into letters as
  well, so a last-letter answer uses the same letter tokens as the rationale that spells it.

Every kind ends with the byte-level alphabet, so any text encodes and decodes exactly.
Cost, measured on last-letter FT sequences (question + fine-style rationale + answer): bpe 112
tokens, bpe_split 205, char 309 on average.
"""

from __future__ import annotations

from tokenizers import Regex, pre_tokenizers

TOKENIZER_KINDS: tuple[str, ...] = ("bpe", "char", "bpe_split")

_QUOTED = r'"[^"\n]*"'
# One piece per character of a piece that starts with a quote or is one bare lowercase word:
# `\A(?=…)` starts a chain at the piece start and `\G` continues it from the previous match.
_SPELL_OUT = r'(?:\A(?="|\s?\p{Ll}+\z)|\G(?!\A)).'
_PUNCTUATION = r"[^\s\p{L}\p{N}]"
_BYTES = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)


def pre_tokenizer(kind: str) -> pre_tokenizers.PreTokenizer:
    """The pre-tokenizer of one tokenizer kind (see the module docstring)."""
    if kind == "bpe":
        return pre_tokenizers.ByteLevel(add_prefix_space=False)
    if kind == "char":
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated"), _BYTES])
    if kind == "bpe_split":
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_QUOTED), "isolated"),
            pre_tokenizers.Split(Regex(_SPELL_OUT), "isolated"),
            pre_tokenizers.Split(Regex(r"\s"), "isolated"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.Split(Regex(_PUNCTUATION), "isolated"),
            _BYTES,
        ])
    raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}")
