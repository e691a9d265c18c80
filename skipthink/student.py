"""The student: a GPT-2 built from config with a BPE trained on the run's own text, a named
pretrained student pulled from the registry (`skipthink.pretrained`), or any Hugging Face
causal LM by name or local path.

Every method of a run starts from the directory `build_initial_student` writes, which is how
CWT and STT share their initial weights. The format markers (`###`, `-->`, `[1]`…`[M]`,
`[answer]`, `[skip]`, `[thought]`) are added as *ordinary* added tokens, not special ones: each
is one token, text splits around it, and `decode(skip_special_tokens=True)` still shows it, so
the generation side can parse `[answer]`. The space in front of a marker stays its own token
(`" [1]"` -> `Ġ`, `[1]`), which keeps encode/decode an exact round trip and makes a prompt and
a target tokenised separately concatenate to the joint tokenisation.

A pretrained student gets the markers it lacks as new rows. Transformers' mean resizing starts
them all near the mean embedding; with the output head tied to them they hardly move apart at
fine-tuning learning rates (a 135M student wrote `[3]` for every chunk marker). So by default
each new row starts as the mean of the embeddings of its own spelling (`[2]` -> `[`, `2`, `]`),
which the model already reads and writes (`student.marker_init`; docs/BENCHMARKS.md has the
measurement). Every pretrained row stays as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from skipthink.config import StudentConfig
from skipthink.formats import special_tokens
from skipthink.pretrained import is_pulled, model_dir, pull_command
from skipthink.tokenizers import pre_tokenizer

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
METADATA_FILE = "skipthink_student.json"

# (n_layer, n_embd, n_head) per named size; nano has ~0.4M non-embedding parameters.
GPT2_SIZES = {
    "nano": (2, 128, 2),
    "tiny": (4, 256, 4),
    "small": (6, 512, 8),
    "base": (12, 768, 12),
}


class StudentError(RuntimeError):
    """The student cannot be built or loaded; the message says what to change."""


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bf16_supported(device: torch.device) -> bool:
    """bf16 that is fast, not emulated: CUDA with bf16, or a CPU with avx512_bf16 or AMX
    (without them CPU bf16 autocast measured 4x slower than fp32 for a 135M student)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_precision(setting: str, device: torch.device) -> str:
    """`training.precision` (auto | fp32 | bf16) -> fp32 | bf16 for this device."""
    if setting == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return setting


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def gpt2_shape(cfg: StudentConfig) -> tuple[int, int, int]:
    """(n_layer, n_embd, n_head): the named size, with any explicit field overriding it."""
    base = GPT2_SIZES.get(cfg.size, (None, None, None))
    n_layer, n_embd, n_head = (cfg.n_layer or base[0], cfg.n_embd or base[1], cfg.n_head or base[2])
    if n_embd % n_head:
        raise StudentError(f"student.n_embd ({n_embd}) must be divisible by student.n_head ({n_head})")
    return n_layer, n_embd, n_head


def train_tokenizer(texts: Sequence[str], vocab_size: int, num_chunks: int, kind: str = "bpe") -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `texts` with the pre-tokenizer of `kind` (skipthink/tokenizers.py), plus the format markers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer(kind)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    add_format_tokens(wrapped, num_chunks)
    return wrapped


def add_format_tokens(tokenizer, num_chunks: int) -> int:
    """Add every marker as a single, non-special, non-normalised token; returns how many were new."""
    tokens = [AddedToken(t, normalized=False, lstrip=False, rstrip=False, special=False) for t in special_tokens(num_chunks)]
    added = tokenizer.add_tokens(tokens)
    for t in special_tokens(num_chunks):
        ids = tokenizer.encode(t, add_special_tokens=False)
        if len(ids) != 1:
            raise StudentError(f"format marker {t!r} tokenises to {len(ids)} tokens; expected one")
    return added


def build_scratch_model(cfg: StudentConfig, tokenizer) -> GPT2LMHeadModel:
    n_layer, n_embd, n_head = gpt2_shape(cfg)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # The same tanh-approximated GELU as GPT-2's `gelu_new`, as one fused kernel
        # instead of Python-level ops: ~15% faster decoding on CPU.
        activation_function="gelu_pytorch_tanh",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        return GPT2LMHeadModel(config)


def pretrained_source(cfg: StudentConfig) -> str:
    """The directory or hub name a pretrained student loads from; a registry name must be pulled."""
    if not cfg.name:
        return cfg.name_or_path
    if not is_pulled(cfg.name):
        raise StudentError(f"student.name {cfg.name!r}: not pulled yet under {model_dir(cfg.name)}; run `{pull_command(cfg.name)}`")
    return str(model_dir(cfg.name))


def add_marker_rows(model, tokenizer, num_chunks: int, init: str) -> None:
    """Add the markers the tokenizer lacks, with new embedding rows initialised by `init`
    ("spelling" or "mean"); existing ids and rows are untouched."""
    markers = special_tokens(num_chunks)
    spellings = {t: tokenizer.encode(t, add_special_tokens=False) for t in markers}
    first_new = len(tokenizer)
    add_format_tokens(tokenizer, num_chunks)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=init == "mean")
    if init != "spelling":
        return
    matrices = {id(m.weight): m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}
    with torch.no_grad():
        for weight in matrices.values():  # a tied head is the same tensor: once
            for t in markers:
                new = tokenizer.convert_tokens_to_ids(t)
                if new >= first_new:
                    weight[new] = weight[spellings[t]].mean(0)


def _from_pretrained(cfg: StudentConfig, num_chunks: int):
    source = pretrained_source(cfg)
    kwargs = {"local_files_only": bool(cfg.name) or not cfg.allow_download}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as e:
        hint = "" if cfg.allow_download else " (downloads are off: set student.allow_download=true or give a local path)"
        raise StudentError(f"student.name_or_path {source!r}: cannot load{hint}: {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    add_marker_rows(model, tokenizer, num_chunks, cfg.marker_init)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def build_initial_student(cfg: StudentConfig, texts: Sequence[str], num_chunks: int, out_dir: Path) -> Path:
    """Build the run's initial student and save it (safetensors + tokenizer) in `out_dir`."""
    if cfg.kind == "scratch":
        if not texts:
            raise StudentError("a scratch student needs the run's text to train its tokenizer")
        tokenizer = train_tokenizer(texts, cfg.vocab_size, num_chunks, cfg.tokenizer)
        model = build_scratch_model(cfg, tokenizer)
    else:
        model, tokenizer = _from_pretrained(cfg, num_chunks)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    meta = {"kind": cfg.kind, "num_chunks": num_chunks, "n_params": count_parameters(model), "config": cfg.model_dump(mode="json")}
    (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def load_student(path: Path | str, device: str = "auto", precision: str = "fp32"):
    """(model in eval mode on `device`, tokenizer) from a directory written by save_pretrained.

    `precision` (a `training.precision` value) casts the weights for inference: bf16 weights
    halve the memory traffic of decoding. Training loads fp32 master weights (the default).
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise StudentError(f"{path}: not a saved student (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    target = resolve_device(device)
    dtype = torch.bfloat16 if resolve_precision(precision, target) == "bf16" else torch.float32
    model.to(device=target, dtype=dtype).eval()
    return model, tokenizer


def student_label(cfg: StudentConfig) -> str:
    """What the student is, in a word: its registry name, its HF source, or scratch GPT-2 + size."""
    if cfg.kind == "pretrained":
        return cfg.name or cfg.name_or_path
    return f"scratch-gpt2-{cfg.size}"


def student_summary(cfg: StudentConfig, student_dir: Path) -> dict:
    """{name, n_params} of an initial student written by `build_initial_student`."""
    meta = json.loads((Path(student_dir) / METADATA_FILE).read_text())
    return {"name": student_label(cfg), "n_params": meta["n_params"]}
