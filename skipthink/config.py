"""One validated config tree for the whole pipeline.

Every field has bounds and a description (the Prefect UI renders them as a form; the CLI
shows them in errors). `extra="forbid"` everywhere, so a typo is an error that names the
field before any work starts. Secrets are never config values: the teacher reads its API key
from the environment variable named by `teacher.api_key_env`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, ValidationError, field_serializer, field_validator, model_validator

from skipthink.methods import METHOD_NAMES, MethodName, method
from skipthink.teacher.endpoint import check_base_url, redact_url

SYNTHETIC_DATASETS = (
    "coin_flip",
    "last_letter_concatenation",
    "tracking_shuffled_objects",
    "multiarith",
)
# Fine-tune-CoT tasks whose recorded text-davinci-002 completions are published.
FINETUNE_COT_DATASETS = (
    "single_eq",
    "addsub",
    "multiarith",
    "svamp",
    "date_understanding",
    "tracking_shuffled_objects",
    "last_letter_concatenation",
    "coin_flip",
    "strategy_qa",
)
METHODS = METHOD_NAMES
# Extra environment variables (comma/space separated) that teacher.api_key_env may name.
ALLOWED_KEY_VARS_ENV = "SKIPTHINK_ALLOWED_KEY_VARS"
# model_dump(mode="json", context={REVEAL_SECRETS: True}) keeps credentials in teacher.base_url.
REVEAL_SECRETS = "reveal_secrets"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
AnswerType = Literal["number", "float", "letter", "yes_no", "string"]
PRESETS = ("demo", "smoke", "paper", "pretrained-smoke", "gpt2-synthetic")
# Where a Fine-tune-CoT data directory is found when a config needs one and leaves it unset
# (the presets on real data do): dataset.data_dir and teacher.server.data_dir.
FINETUNE_COT_DIR_ENV = "SKIPTHINK_FINETUNE_COT_DIR"


def _data_dir_from_env(data: Any, needed: bool) -> Any:
    """Fill an unset `data_dir` from $SKIPTHINK_FINETUNE_COT_DIR when the section needs one."""
    if needed and isinstance(data, dict) and not data.get("data_dir") and os.environ.get(FINETUNE_COT_DIR_ENV):
        data = dict(data, data_dir=os.environ[FINETUNE_COT_DIR_ENV])
    return data


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _count(lo: int, hi: int) -> Any:
    """A difficulty knob: one number, or [min, max] to draw a value per question."""
    one = Annotated[int, Field(ge=lo, le=hi)]
    return Union[one, tuple[one, one]]


class SyntheticOptions(Strict):
    """Difficulty knobs of the synthetic generators. At the defaults every generator writes the
    real benchmark's format and size; a [min, max] knob draws its value per question (uniform),
    which gives a curriculum something to order."""

    n_objects: _count(3, 7) = Field(3, description="tracking_shuffled_objects: objects (people); the real benchmark uses 3.")
    n_swaps: Optional[_count(1, 20)] = Field(None, description="tracking_shuffled_objects: swaps per question (None = one per object, as BIG-bench).")
    arith_steps: _count(2, 3) = Field(2, description="multiarith: operations per problem; the real MultiArith uses 2.")
    operand_digits: Optional[_count(1, 6)] = Field(None, description="multiarith: operands have up to this many digits, drawn to use them (None = the real MultiArith's number ranges, mostly 1-2 digits).")
    n_people: _count(1, 8) = Field(4, description="coin_flip: people who may flip the coin; the real benchmark uses 4.")
    n_words: _count(1, 8) = Field(4, description="last_letter_concatenation: names to concatenate; the real benchmark uses 4.")

    @field_validator("n_objects", "n_swaps", "arith_steps", "operand_digits", "n_people", "n_words")
    @classmethod
    def _range_in_order(cls, v):
        if isinstance(v, tuple) and v[0] > v[1]:
            raise ValueError(f"a [min, max] range needs min <= max, got {list(v)}")
        return v


class FieldMapping(Strict):
    question: str = Field("question", description="Record field holding the question text.")
    answer: str = Field("answer", description="Record field holding the gold answer.")
    rationale: Optional[str] = Field(None, description="Record field holding a rationale the user already has (used by teacher.source=dataset).")
    split: Optional[str] = Field(None, description="Record field holding 'train'/'test'; when unset a seeded split is drawn.")


class DatasetConfig(Strict):
    name: str = Field("coin_flip", description="Dataset key, e.g. coin_flip, multiarith, svamp, or any name for source=file/hub.")
    source: Literal["synthetic", "finetune_cot", "file", "hub"] = Field("synthetic", description="Where examples come from.")
    n_train: int = Field(400, ge=1, le=1_000_000, description="Synthetic: training examples to generate (validation is carved from these).")
    n_test: int = Field(200, ge=1, le=1_000_000, description="Synthetic: test examples to generate.")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of train carved (seeded) into a validation split for model selection.")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="file/hub without a split field: share of records drawn into test.")
    max_train: Optional[int] = Field(None, ge=1, description="Cap on the training pool (seeded draw), applied before validation is carved from it (None = all).")
    max_test: Optional[int] = Field(None, ge=1, description="Cap on test examples, a seeded draw (None = all).")
    seed: int = Field(0, ge=0, description="Seed for generation and splits.")
    synthetic: SyntheticOptions = Field(default_factory=SyntheticOptions, description="Difficulty knobs of the synthetic generators.")
    curriculum: Literal["none", "easy_to_hard"] = Field("none", description="synthetic: easy_to_hard trains every epoch from the easiest questions to the hardest (difficulty per generator, skipthink/datasets/synthetic); none shuffles.")
    data_dir: Optional[Path] = Field(None, description=f"finetune_cot: a directory laid out like Fine-tune-CoT's data release (default: ${FINETUNE_COT_DIR_ENV}).")
    path: Optional[Path] = Field(None, description="file: a JSON / JSONL / Parquet / CSV file.")
    fields: FieldMapping = Field(default_factory=FieldMapping, description="file/hub: which record fields hold what.")
    answer_type: Optional[AnswerType] = Field(None, description="file/hub: how answers are parsed and compared (required there).")
    hub_name: Optional[str] = Field(None, description="hub: dataset name for datasets.load_dataset.")
    hub_config: Optional[str] = Field(None, description="hub: dataset config name.")
    allow_network: bool = Field(False, description="hub: allow downloading from the Hugging Face hub.")

    @model_validator(mode="before")
    @classmethod
    def _default_data_dir(cls, data: Any) -> Any:
        return _data_dir_from_env(data, isinstance(data, dict) and data.get("source") == "finetune_cot")

    @model_validator(mode="after")
    def _check_source(self) -> "DatasetConfig":
        if self.source == "synthetic" and self.name not in SYNTHETIC_DATASETS:
            raise ValueError(f"dataset.name: unknown synthetic dataset {self.name!r}; choose one of {', '.join(SYNTHETIC_DATASETS)}")
        if self.source == "finetune_cot":
            if self.name not in FINETUNE_COT_DATASETS:
                raise ValueError(f"dataset.name: {self.name!r} has no recorded Fine-tune-CoT completions; choose one of {', '.join(FINETUNE_COT_DATASETS)}")
            if self.data_dir is None:
                raise ValueError(f"dataset.data_dir: required when dataset.source is finetune_cot (or set ${FINETUNE_COT_DIR_ENV})")
        if self.curriculum != "none" and self.source != "synthetic":
            raise ValueError("dataset.curriculum: needs dataset.source synthetic (difficulty is read from the generators' question format)")
        if self.source == "file" and self.path is None:
            raise ValueError("dataset.path: required when dataset.source is file")
        if self.source in ("file", "hub") and self.answer_type is None:
            raise ValueError(f"dataset.answer_type: required when dataset.source is {self.source}")
        if self.source == "hub" and not self.hub_name:
            raise ValueError("dataset.hub_name: required when dataset.source is hub")
        return self


class Price(Strict):
    input_per_mtok: float = Field(..., ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(..., ge=0, description="USD per million completion tokens.")


class TeacherServerConfig(Strict):
    backend: Literal["scripted", "replay"] = Field("scripted", description="Embedded server backend: scripted solver or recorded completions.")
    error_rate: float = Field(0.1, ge=0.0, le=1.0, description="scripted: share of rationales with a wrong step (and so a wrong answer).")
    seed: int = Field(0, ge=0, description="scripted: seed for phrasing and errors (mixed with the question).")
    style: Literal["default", "fine", "terse"] = Field("default", description="scripted: rationale granularity; default = zero-shot-CoT-like varied phrasing, fine = one fact per line with the whole state, terse = fewest steps (skipthink/teacher_server/scripted.py).")
    data_dir: Optional[Path] = Field(None, description=f"replay: Fine-tune-CoT-layout directory with recorded completions (default: ${FINETUNE_COT_DIR_ENV}).")

    @model_validator(mode="before")
    @classmethod
    def _default_data_dir(cls, data: Any) -> Any:
        return _data_dir_from_env(data, isinstance(data, dict) and data.get("backend") == "replay")


class TeacherConfig(Strict):
    # A bad base_url may hold credentials: validation errors must not echo it.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    source: Literal["api", "dataset"] = Field("api", description="api: ask a teacher model; dataset: use rationales the dataset already carries.")
    base_url: Optional[str] = Field(None, description="OpenAI-compatible endpoint; unset = start the built-in teacher server on loopback.")
    model: str = Field("scripted-teacher", min_length=1, description="Teacher model name sent to the API.")
    endpoint: Literal["chat", "completions"] = Field("completions", description="Which API to call.")
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1, description=(
        "Name of the environment variable holding the API key (the key itself is never config); it must end in _API_KEY or "
        f"_TOKEN or be listed in ${ALLOWED_KEY_VARS_ENV}, so a parameter cannot send an arbitrary variable to an endpoint."))
    prompt: Literal["zs_cot", "zs_cot_one_step", "few_shot"] = Field("zs_cot", description="Prompt template: Fine-tune-CoT two-step zero-shot-CoT, one-step, or few-shot CoT.")
    few_shot_file: Optional[Path] = Field(None, description="few_shot: a text file of exemplars prepended to every question.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (Fine-tune-CoT: 0 greedy, 0.7 for diverse reasoning).")
    max_tokens: int = Field(128, ge=1, le=8192, description="Rationale token cap (Fine-tune-CoT: 128); hitting it marks the rationale truncated.")
    answer_max_tokens: int = Field(32, ge=1, le=1024, description="Token cap of the second (answer) call of the two-step prompt.")
    n_completions: int = Field(1, ge=1, le=128, description="Rationales per question (diverse reasoning when > 1).")
    max_concurrency: int = Field(32, ge=1, le=1024, description="Requests in flight at once.")
    requests_per_minute: Optional[float] = Field(None, gt=0, description="Request-rate cap (None = none).")
    tokens_per_minute: Optional[float] = Field(None, gt=0, description="Token-rate cap (None = none).")
    max_retries: int = Field(8, ge=0, le=100, description="Retries per request on 429 / 5xx / timeouts.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    backoff_base_s: float = Field(0.5, gt=0, description="First retry delay; doubles per attempt, with jitter.")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest retry delay.")
    mode: Literal["online", "batch"] = Field("online", description="online requests, or the OpenAI Batch API flow.")
    batch_poll_s: float = Field(5.0, gt=0, description="batch: seconds between status polls.")
    prices: dict[str, Price] = Field(default_factory=dict, description="USD prices per model name; a model not listed costs 0.")
    batch_discount: float = Field(0.5, ge=0.0, le=1.0, description="Price multiplier for batch mode.")
    max_cost_usd: Optional[float] = Field(None, gt=0, description="Stop gracefully once this much has been spent (batch mode: submit only what fits).")
    batch_timeout_s: float = Field(26 * 3600.0, gt=0, description="batch: stop polling after this long (the batch stays stored; a rerun polls it again).")
    check_endpoint: bool = Field(True, description="GET /models before the first request, so a wrong URL, key or path fails at once.")
    max_identical_failures: int = Field(5, ge=1, le=10_000, description="Stop the stage after this many attempts in a row fail with the same connection/401/403/404 error.")
    max_failed_fraction: float = Field(0.0, ge=0.0, le=1.0, description="Fail the stage (responses kept) when more than this share of requests failed; a rerun retries only the failed ones.")
    min_kept_fraction: float = Field(0.5, ge=0.0, le=1.0, description="source=dataset: fail the stage when the answer filter keeps less than this share of the rationales.")
    flush_every: int = Field(64, ge=1, le=100_000, description="Save responses to the store after this many arrive (a kill loses at most these plus the calls in flight).")
    flush_interval_s: float = Field(0.5, gt=0, le=3600, description="Save buffered responses at least this often.")
    keep: Literal["correct", "all"] = Field("correct", description="Keep only rationales whose answer matches gold (Fine-tune-CoT), or all.")
    drop_truncated: bool = Field(False, description="Drop rationales cut by max_tokens.")
    server: TeacherServerConfig = Field(default_factory=TeacherServerConfig, description="The built-in server used when base_url is unset.")

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else check_base_url(v)

    @field_validator("api_key_env")
    @classmethod
    def _check_api_key_env(cls, v: str) -> str:
        if not _ENV_NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not an environment variable name")
        allowed = set(re.split(r"[\s,:]+", os.environ.get(ALLOWED_KEY_VARS_ENV, "")))
        if not v.endswith(("_API_KEY", "_TOKEN")) and v not in allowed:
            raise ValueError(f"{v!r} must end in _API_KEY or _TOKEN, or be listed in the environment variable {ALLOWED_KEY_VARS_ENV}")
        return v

    @field_serializer("base_url", when_used="json")
    def _redact_base_url(self, v: Optional[str], info: SerializationInfo) -> Optional[str]:
        # JSON is what leaves the process (Prefect parameters, stage_runs, fingerprints): credentials
        # in the URL stay behind unless the caller round-trips the config in-process.
        if v is None or (info.context or {}).get(REVEAL_SECRETS):
            return v
        return redact_url(v)


class StudentConfig(Strict):
    kind: Literal["scratch", "pretrained"] = Field("scratch", description="scratch: GPT-2 built from config with a BPE trained on the run's text; pretrained: a Hugging Face causal LM.")
    size: Literal["nano", "tiny", "small", "base", "custom"] = Field("tiny", description="scratch: named GPT-2 size; custom uses n_layer / n_embd / n_head.")
    n_layer: Optional[int] = Field(None, ge=1, le=96, description="scratch: layers (overrides size).")
    n_embd: Optional[int] = Field(None, ge=8, le=8192, description="scratch: width (overrides size).")
    n_head: Optional[int] = Field(None, ge=1, le=128, description="scratch: attention heads (overrides size).")
    n_positions: int = Field(512, ge=32, le=8192, description="scratch: context length.")
    vocab_size: int = Field(2048, ge=300, le=100_000, description="scratch: BPE vocabulary size.")
    tokenizer: Literal["bpe", "char", "bpe_split"] = Field("bpe", description="scratch: bpe = byte-level BPE; char = one token per character; bpe_split = BPE with each digit, each space and the letters of quoted words as their own tokens (skipthink/tokenizers.py).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="scratch: dropout.")
    name: Optional[str] = Field(None, description="pretrained: a named student from the registry (`skipthink models list`), pulled once with `skipthink models pull NAME`.")
    name_or_path: Optional[str] = Field(None, description="pretrained: any Hugging Face model directory or hub name (instead of student.name).")
    allow_download: bool = Field(False, description="pretrained: allow fetching weights from the hub.")
    marker_init: Literal["spelling", "mean"] = Field(
        "spelling",
        description="pretrained: how the rows of new marker tokens start: the mean of the embeddings of the marker's own spelling ([1] -> [, 1, ]), or transformers' mean resizing.",
    )
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N.")
    init_seed: int = Field(0, ge=0, description="Seed of the scratch initial weights (shared by CWT and STT).")

    @model_validator(mode="after")
    def _check_kind(self) -> "StudentConfig":
        if self.kind == "pretrained":
            if bool(self.name) == bool(self.name_or_path):
                raise ValueError("student.name / student.name_or_path: give exactly one when student.kind is pretrained")
            from skipthink.pretrained import REGISTRY

            if self.name and self.name not in REGISTRY:
                raise ValueError(f"student.name: unknown student {self.name!r}; choose one of {', '.join(REGISTRY)} (or set student.name_or_path)")
        if self.size == "custom" and None in (self.n_layer, self.n_embd, self.n_head):
            raise ValueError("student.n_layer/n_embd/n_head: all required when student.size is custom")
        return self


class ChunkingConfig(Strict):
    num_chunks: Union[Literal["auto"], int] = Field(
        "auto",
        description="M: chunks per rationale (fixed per dataset; it tells the model when to stop). auto = the rounded mean step count of the kept training rationales (at least 2), recorded in the chunk stage's summary.",
    )
    eta: float = Field(
        0.1, ge=0.0,
        description="SBC: a move is accepted when the score drops by more than eta relative, (old-new)/old > eta; "
        "smaller eta accepts more moves (0 = any improvement); inf = never (the chunking stays as it starts). "
        "anneal: the best chunking visited replaces the start under the same rule.",
    )
    max_rounds: int = Field(8, ge=0, le=1000, description="SBC: search rounds per refresh at most; a refresh also stops as soon as no move is accepted.")
    search: Literal["greedy", "anneal"] = Field(
        "greedy", description="SBC search: greedy = accept each item's best single boundary move per round (docs/DESIGN.md §1.2); "
        "anneal = simulated annealing over single boundary moves, ending on the best chunking visited."
    )
    anneal_steps: int = Field(16, ge=1, le=10000, description="anneal: steps per refresh; each proposes one random boundary move per item, all items scored together (a step costs about 0.4 of a greedy round: one full pass per item, nothing shared).")
    anneal_t0: float = Field(
        0.05, ge=0.0, le=10.0,
        description="anneal: start temperature T; a move that raises the score by r relative ((new-old)/old) is accepted "
        "with probability exp(-r/T), a move that does not raise it always (0 = never uphill).",
    )
    anneal_cooling: float = Field(0.8, gt=0.0, le=1.0, description="anneal: the temperature is multiplied by this after every step (1 = constant).")
    anneal_seed: int = Field(0, ge=0, description="anneal: seed of the proposals and acceptances (the same at every refresh).")
    refresh_every: int = Field(1, ge=1, description="SBC: search before every k-th epoch from the second epoch on (the first epoch trains on average chunking).")
    score_batch_size: int = Field(64, ge=1, le=4096, description="SBC: sequences per no-grad scoring batch.")

    @field_validator("num_chunks")
    @classmethod
    def _chunks_in_range(cls, v):
        if v != "auto" and not 1 <= int(v) <= 64:
            raise ValueError("num_chunks must be auto or an integer in 1..64")
        return v

    @field_validator("eta")
    @classmethod
    def _eta_not_nan(cls, v: float) -> float:
        if math.isnan(v):
            raise ValueError("eta must be a number")
        return v


class TrainingConfig(Strict):
    epochs: int = Field(8, ge=1, le=1000, description="Training epochs.")
    batch_size: int = Field(16, ge=1, le=4096, description="Sequences per optimisation step (per process).")
    lr: float = Field(1e-3, gt=0, le=1.0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="Share of steps spent warming up the LR.")
    schedule: Literal["cosine", "constant", "linear"] = Field("cosine", description="LR schedule after warm-up.")
    grad_clip: float = Field(1.0, ge=0.0, description="Global gradient-norm clip (0 = off).")
    max_length: int = Field(256, ge=16, le=8192, description="Longest training sequence in tokens; longer ones are left-truncated in the prompt.")
    segment_sampling: Literal["expand", "random", "cycle"] = Field(
        "expand",
        description="Chunked methods: which segments (chunk j / answer) an item trains per epoch. expand = every segment of every item each epoch, at most one segment of an item per batch; random = one random segment per item per epoch; cycle = one per epoch, visiting all in turn.",
    )
    budget: Literal["epochs", "tokens"] = Field(
        "epochs",
        description="What is held equal between methods: epochs = every method trains `epochs` epochs; tokens = each method trains as many epochs as bring its target tokens closest to `token_budget`.",
    )
    token_budget: Optional[int] = Field(
        None, ge=1, description="budget=tokens: target tokens to train on; unset = what FT sees in `epochs` epochs of the same items."
    )
    seed: int = Field(0, ge=0, description="Data-order and sampling seed.")
    early_stopping_patience: Optional[int] = Field(None, ge=1, description="Stop after this many epochs without validation improvement.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Compute precision of training, SBC scoring and generation: auto = bf16 where the GPU or CPU (avx512_bf16 / AMX) has it, else fp32."
    )
    log_every: int = Field(10, ge=1, description="Steps between train_log rows.")
    core_token_stats: bool = Field(
        False,
        description="After each epoch, measure loss and confidence on core tokens (numbers, names, quoted words, answers: skipthink/core_tokens.py) "
        "vs the rest of the validation targets; kept in the train stage's summary (`skipthink results mechanism`). Costs one more validation pass.",
    )
    ddp_processes: int = Field(1, ge=1, le=64, description="Processes for data-parallel training (launched with torchrun when > 1).")

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        """Renamed keys keep working: `stage_sampling` is `segment_sampling` (a training sequence
        is a segment, a stage is a pipeline stage); `mixed_precision` (auto | no | bf16) is
        `precision` (auto | fp32 | bf16) — an old key comes from the user's layer, so it wins."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "stage_sampling" in data:
            data.setdefault("segment_sampling", data.pop("stage_sampling"))
        if "mixed_precision" in data:
            old = data.pop("mixed_precision")
            # YAML reads an unquoted `no` as False.
            mapped = {"auto": "auto", "no": "fp32", False: "fp32", "bf16": "bf16"}.get(old) if isinstance(old, (str, bool)) else None
            if mapped is None:
                raise ValueError(f"training.mixed_precision is now training.precision (auto | fp32 | bf16); {old!r} has no equivalent here")
            data["precision"] = mapped
        return data


def with_num_chunks(cfg: "PipelineConfig", num_chunks: int) -> "PipelineConfig":
    """The config with M resolved to the number the chunk stage chose (for `num_chunks: auto`)."""
    return cfg.model_copy(update={"chunking": cfg.chunking.model_copy(update={"num_chunks": int(num_chunks)})})


def auto_num_chunks(step_counts: list[int]) -> int:
    """`num_chunks: auto`: the rounded mean step count (at least 2, so a chunked rationale has a
    first and a last chunk), as the paper sets M near the average number of reasoning steps."""
    if not step_counts:
        raise ValueError("num_chunks=auto needs at least one rationale")
    return max(2, min(64, int(math.floor(sum(step_counts) / len(step_counts) + 0.5))))


class SkipConfig(Strict):
    candidates: Literal["medium", "all"] = Field("medium", description="Chunks tried for skipping: medium = 2..M-1, all = 1..M.")
    check: Literal["generate", "teacher_forced"] = Field(
        "generate",
        description="How a removal is checked: generate = the CWT student writes the remaining chunks and the answer itself; teacher_forced = the remaining chunks are the teacher's and only the answer is decoded.",
    )
    mix: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="STT/SkipALL: share of items that train on their skip sample instead of their CWT sample in an epoch (seeded per epoch), so an epoch has as many items as CWT-SBC's.",
    )
    min_position_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Skip a chunk position only where at least this share of the checked items can do without it; below it, no item skips there (0 = the paper: every passing check is kept). A position only some items can skip teaches STT to skip where it must guess (docs/RESULTS.md §P2: coin flip's parity).",
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Examples per check batch.")
    max_answer_tokens: int = Field(16, ge=1, le=512, description="Tokens decoded for the answer during the check (teacher_forced).")
    max_new_tokens: int = Field(160, ge=1, le=8192, description="Tokens decoded for the remaining chunks and the answer during the check (generate).")


class EvaluationConfig(Strict):
    split: Literal["test", "val"] = Field(
        "test", description="Split the methods are evaluated on: test (reported), or val (for choosing settings — never tune on test)."
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Batch size of test-set generation.")
    max_new_tokens: int = Field(192, ge=1, le=8192, description="Generation cap.")
    latency_samples: int = Field(20, ge=1, description="Questions timed at batch 1 (median reported).")
    throughput_batch: int = Field(32, ge=1, description="Batch size of the throughput measurement.")
    real_data_dir: Optional[Path] = Field(None, description="Fine-tune-CoT-layout directory: also test synthetic-trained students on the real test split.")
    methods: list[MethodName] = Field(
        default_factory=lambda: list(METHODS), description="Methods trained and evaluated."
    )


def default_home() -> Path:
    return Path(os.environ.get("SKIPTHINK_HOME", Path.home() / ".skipthink"))


_process_db: dict[int, str] = {}


def process_db_name() -> str:
    """This process's per-run database name: start time (so names sort by age), host, pid.
    Keyed by pid, so a forked child gets a file of its own."""
    pid = os.getpid()
    if pid not in _process_db:
        host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:63] or "host"
        _process_db[pid] = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{host}-{pid}"
    return _process_db[pid]


class StorageConfig(Strict):
    home: Path = Field(default_factory=default_home, description="Project home: database, checkpoints, reports, Prefect results.")
    db_file: Optional[Path] = Field(None, description="single layout: the DuckDB file (default: <home>/skipthink.duckdb).")
    layout: Literal["single", "per_run"] = Field(
        default_factory=lambda: os.environ.get("SKIPTHINK_STORAGE_LAYOUT", "single"),
        validate_default=True,
        description="single: one database file, for processes on one machine (a file lock serialises them). "
        "per_run: each process (flow run, pod) writes its own <home>/db/<start>-<host>-<pid>.duckdb, for many "
        "machines on one shared volume; `skipthink db` reads all of them through one view. "
        "Default: $SKIPTHINK_STORAGE_LAYOUT, else single (deploy/STORAGE.md).",
    )
    run_id: Optional[str] = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="per_run: this run's database file name (<home>/db/<run_id>.duckdb); a flow sets it so the "
        "processes of one run on one machine (Dask workers) share a file. Unset: one file per process.",
    )

    @property
    def db_path(self) -> Path:
        if self.layout == "per_run":
            return Path(self.home) / "db" / f"{self.run_id or process_db_name()}.duckdb"
        return Path(self.db_file) if self.db_file else Path(self.home) / "skipthink.duckdb"

    @model_validator(mode="after")
    def _check_layout(self) -> "StorageConfig":
        if self.layout == "per_run" and self.db_file is not None:
            raise ValueError("storage.db_file: only for layout single (per_run names one file per run under <home>/db/)")
        if self.layout == "single" and self.run_id is not None:
            raise ValueError("storage.run_id: only for layout per_run")
        return self


class RuntimeConfig(Strict):
    torch_threads: Optional[int] = Field(
        None,
        ge=1,
        le=1024,
        description="Threads torch may use in this run; unset = the machine's cores divided by SKIPTHINK_CONCURRENT_RUNS (set by sweeps and served deployments that run several flows at once), capped by OMP_NUM_THREADS when the environment sets it. Not part of any fingerprint.",
    )


class PipelineConfig(Strict):
    run_name: str = Field("demo", min_length=1, max_length=200, description="Label of this pipeline run.")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig, description="What to distill on.")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description="Who writes the rationales.")
    student: StudentConfig = Field(default_factory=StudentConfig, description="The small model.")
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig, description="Chunk-wise settings (M, SBC).")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Optimisation.")
    skip: SkipConfig = Field(default_factory=SkipConfig, description="Skip-data generation.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Test-set evaluation and speed.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Where artifacts live.")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="How this process runs (threads); never changes results' fingerprints.")

    @model_validator(mode="after")
    def _check_methods(self) -> "PipelineConfig":
        methods = self.evaluation.methods
        if not methods:
            raise ValueError("evaluation.methods: choose at least one method")
        if len(set(methods)) != len(methods):
            raise ValueError("evaluation.methods: a method is listed twice")
        for name in methods:
            base = method(name).builds_on
            if base and base not in methods:
                raise ValueError(f"evaluation.methods: {name} builds on {base}; add {base}")
        return self


class ConfigError(ValueError):
    """A config problem, phrased with the dotted field path."""


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "invalid config:\n  " + "\n  ".join(lines)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {p} is not a section")
        node = nxt
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=c` -> ("a.b", yaml-parsed c)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected a.b=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty field name")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if raw.strip().lower() in ("inf", "+inf", ".inf"):
        value = float("inf")
    return key, value


def preset_dict(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    text = resources.files("skipthink.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(preset: Optional[str] = "demo", file: Optional[Path] = None, overrides: tuple[str, ...] | list[str] = ()) -> PipelineConfig:
    """Preset, then a YAML file, then `a.b=c` overrides; validated once at the end."""
    tree: dict = preset_dict(preset) if preset else {}
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"config file {path}: not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path}: not valid YAML: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
        tree = _deep_merge(tree, loaded)
    for text in overrides:
        key, value = parse_override(text)
        _set_path(tree, key, value)
    return validate_config(tree)


def validate_config(tree: dict | PipelineConfig) -> PipelineConfig:
    if isinstance(tree, PipelineConfig):
        tree = tree.model_dump(mode="json", context={REVEAL_SECRETS: True})
    try:
        return PipelineConfig.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e)) from None


def canonical_json(section: BaseModel | dict | Any) -> str:
    """Stable JSON (sorted keys, no spaces) used for fingerprints."""
    data = section.model_dump(mode="json") if isinstance(section, BaseModel) else section
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(*parts: str, length: int = 16) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\x00")
    return h.hexdigest()[:length]
