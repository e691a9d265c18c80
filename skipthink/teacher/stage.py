"""The teacher stage as one pure function: examples in, rationale rows and a summary out.

Steps: build request keys for every (example, completion index); reuse saved responses; check
the endpoint (GET /models) before the first request; send calls only for the rest (online or
Batch API); for the two-step prompt do the same for the answer calls; then parse each answer,
compare with gold and keep the correct ones. With no `teacher.base_url` the built-in scripted
server is started on loopback for the duration. SIGINT/SIGTERM stop sending, save what arrived
and raise `TeacherInterrupted`. `TeacherOutcome.failure` says why the stage must not count as
complete (stopped early, too many failures, too few rationales kept); the caller raises it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import openai

from skipthink.aio import run_coroutine
from skipthink.datasets.base import Example
from skipthink.datasets.scoring import grade
from skipthink.config import TeacherConfig
from skipthink.teacher.batch import BatchRunner
from skipthink.teacher.calls import ANSWER, RATIONALE, Call, request_key
from skipthink.teacher.client import EndpointUnusable, OnlineRunner, make_client
from skipthink.teacher.endpoint import is_loopback_url, redact_text, redact_url
from skipthink.teacher.interrupt import StopOnSignal, TeacherInterrupted
from skipthink.teacher.final_answer import grade_final_statement
from skipthink.teacher.prompts import PromptTemplate, load_template
from skipthink.teacher.store import RequestStore
from skipthink.teacher.usage import ProgressCallback, Usage

log = logging.getLogger(__name__)
LOCAL_PLACEHOLDER_KEY = "sk-local-no-key"
_LOAD_CHUNK = 5000


class TeacherSetupError(ValueError):
    """The stage cannot start (missing key for a remote endpoint, bad template)."""


class TeacherEndpointError(RuntimeError):
    """The endpoint is unreachable or refuses us (wrong URL, path, key): failed fast, nothing retried."""


@dataclass
class TeacherOutcome:
    rationales: list[dict]
    summary: dict = field(default_factory=dict)
    failure: Optional[str] = None  # set when the stage must fail (its responses stay saved)


def resolve_api_key(cfg: TeacherConfig, base_url: str) -> str:
    """The key from the env var named by `api_key_env`; required unless the endpoint is loopback."""
    key = os.environ.get(cfg.api_key_env, "")
    if key:
        return key
    if is_loopback_url(base_url):
        return LOCAL_PLACEHOLDER_KEY
    raise TeacherSetupError(
        f"teacher.base_url {redact_url(base_url)} is not a loopback address and the environment variable "
        f"{cfg.api_key_env} (teacher.api_key_env) is not set: export the API key there"
    )


@contextmanager
def teacher_endpoint(cfg: TeacherConfig) -> Iterator[tuple[str, str, str]]:
    """(base_url, api_key, description): the configured endpoint, or the built-in server."""
    if cfg.base_url:
        key = resolve_api_key(cfg, cfg.base_url)
        yield cfg.base_url, key, redact_url(cfg.base_url)
        return
    from skipthink.teacher_server import start_server

    handle = start_server(cfg.server)
    try:
        yield handle.base_url, LOCAL_PLACEHOLDER_KEY, f"built-in {cfg.server.backend} server"
    finally:
        handle.stop()


def rationale_params(cfg: TeacherConfig, template: PromptTemplate) -> dict:
    return {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "stop": list(template.stop) if template.stop else None}


def answer_params(cfg: TeacherConfig) -> dict:
    # Fine-tune-CoT reads the answer greedily whatever the rationale temperature.
    return {"temperature": 0.0, "max_tokens": cfg.answer_max_tokens, "stop": None}


def _key(cfg: TeacherConfig, template: PromptTemplate, params: dict, ex: Example, ci: int, step: str, prompt: str) -> str:
    # The built-in server's settings (backend, style, error rate, seed) change what it answers.
    model = cfg.model if cfg.base_url is not None else f"{cfg.model} {cfg.server.model_dump_json()}"
    return request_key(endpoint=cfg.endpoint, model=model, template_version=template.version, params=params,
                       dataset=ex.dataset, sample_id=ex.sample_id, completion_index=ci, step=step, prompt=prompt)


def _load(store: RequestStore, keys: Sequence[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(0, len(keys), _LOAD_CHUNK):
        out.update(store.load_responses(keys[i : i + _LOAD_CHUNK]))
    return out


def _plan(items: list[tuple[Example, int, str, str]], step: str, params: dict, saved: dict[str, dict]) -> list[Call]:
    """Group the unsaved (example, completion index, key, prompt) items into calls with n choices."""
    groups: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    for ex, ci, key, prompt in items:
        if key not in saved:
            groups.setdefault((ex.dataset, ex.sample_id, prompt), []).append((ci, key))
    # Same prompt for every missing completion index: one call with n choices, assigned in order.
    return [Call(step, ds, sid, tuple(ci for ci, _ in members), tuple(k for _, k in members), prompt, params)
            for (ds, sid, prompt), members in groups.items()]


class _StageRun:
    def __init__(self, examples: Sequence[Example], cfg: TeacherConfig, store: RequestStore, teacher_fp: str,
                 template: PromptTemplate, base_url: str, api_key: str, usage: Usage):
        self.examples = list(examples)
        self.cfg = cfg
        self.store = store
        self.teacher_fp = teacher_fp
        self.template = template
        self.client = make_client(base_url, api_key, cfg.timeout_s)
        self.usage = usage
        self.stop_reason: Optional[str] = None
        self.online = OnlineRunner(cfg, self.client, store, usage, teacher_fp, template.version)
        self.batch = BatchRunner(cfg, self.client, store, usage, teacher_fp, template.version)
        self.endpoint = redact_url(base_url)
        self._checked = not cfg.check_endpoint

    def _endpoint_error(self, error: BaseException, where: str) -> TeacherEndpointError:
        status = getattr(error, "status_code", None)
        detail = redact_text(str(error), (self.client.api_key,))[:300]
        return TeacherEndpointError(
            f"teacher endpoint {self.endpoint} is unusable: {type(error).__name__}{f' (HTTP {status})' if status else ''} "
            f"on {where}: {detail}. Check teacher.base_url, teacher.model and the key in ${self.cfg.api_key_env}.")

    async def _check_endpoint(self) -> None:
        """GET /models once, before the first paid request: a wrong URL, path or key fails here."""
        if self._checked:
            return
        try:
            listed = await self.client.models.list()
        except (openai.APIConnectionError, openai.APIStatusError) as e:
            raise self._endpoint_error(e, "GET /models") from None
        self._checked = True
        names = {m.id for m in getattr(listed, "data", None) or []}
        if names and self.cfg.model not in names:
            log.warning("teacher model %s is not among the %d models %s lists", self.cfg.model, len(names), self.endpoint)

    async def _step(self, step: str, items: list[tuple[Example, int, str, str]], params: dict) -> dict[str, dict]:
        keys = [key for _, _, key, _ in items]
        saved = await asyncio.to_thread(_load, self.store, keys)
        self.usage.add_cached(len(saved), sum(r.get("cost_usd") or 0.0 for r in saved.values()))
        calls = _plan(items, step, params, saved)
        if calls and self.stop_reason is None:
            await self._check_endpoint()
            try:
                if self.cfg.mode == "batch":
                    self.stop_reason = await self.batch.run(step, calls)
                else:
                    self.stop_reason = await self.online.run(calls)
            except EndpointUnusable as e:
                raise self._endpoint_error(e, f"{step} requests") from None
        return await asyncio.to_thread(_load, self.store, keys)

    async def run(self) -> tuple[list[tuple[Example, int, str]], dict[str, dict], dict[str, dict], dict[tuple, str]]:
        cfg, template = self.cfg, self.template
        r_params = rationale_params(cfg, template)
        r_items = []
        for ex in self.examples:
            prompt = template.rationale_prompt(ex.question)
            for ci in range(cfg.n_completions):
                r_items.append((ex, ci, _key(cfg, template, r_params, ex, ci, RATIONALE, prompt), prompt))
        self.usage.add_total(len(r_items))
        try:
            rationales = await self._step(RATIONALE, r_items, r_params)
            answers: dict[str, dict] = {}
            answer_keys: dict[tuple, str] = {}
            if template.two_step:
                a_params = answer_params(cfg)
                a_items = []
                for ex, ci, r_key, _ in r_items:
                    if r_key in rationales:
                        prompt = template.answer_prompt(ex.question, rationales[r_key]["response"])
                        a_key = _key(cfg, template, a_params, ex, ci, ANSWER, prompt)
                        answer_keys[(ex.dataset, ex.sample_id, ci)] = a_key
                        a_items.append((ex, ci, a_key, prompt))
                self.usage.add_total(len(a_items))
                answers = await self._step(ANSWER, a_items, a_params)
        finally:
            await self.client.close()
        return [(ex, ci, key) for ex, ci, key, _ in r_items], rationales, answers, answer_keys


def _rationale_rows(plan, rationales, answers, answer_keys, cfg: TeacherConfig, template: PromptTemplate, teacher_fp: str) -> tuple[list[dict], dict]:
    counts = {"requested": len(plan), "failed": 0, "truncated": 0, "incorrect": 0, "kept": 0}
    rows = []
    for ex, ci, r_key in plan:
        saved = rationales.get(r_key)
        if saved is None:
            counts["failed"] += 1
            continue
        rationale = saved["response"]
        if template.two_step:
            answer = answers.get(answer_keys.get((ex.dataset, ex.sample_id, ci), ""))
            if answer is None:
                counts["failed"] += 1
                continue
            predicted, correct = grade(answer["response"], ex)
        else:
            predicted, correct = grade(rationale, ex, prefix=template.answer_prefix)
        truncated = saved.get("finish_reason") == "length"
        counts["truncated"] += truncated
        counts["incorrect"] += not correct
        kept = (correct or cfg.keep == "all") and not (truncated and cfg.drop_truncated)
        counts["kept"] += kept
        rows.append({
            "teacher_fp": teacher_fp, "dataset": ex.dataset, "sample_id": ex.sample_id, "completion_index": ci,
            "rationale": rationale, "predicted": predicted, "correct": correct, "truncated": truncated,
            "kept": kept, "request_key": r_key,
        })
    return rows, counts


def _dataset_rows(examples: Sequence[Example], cfg: TeacherConfig, teacher_fp: str) -> tuple[list[dict], dict]:
    """teacher.source=dataset: the examples' own rationales, graded by what their final statement says."""
    counts = {"requested": 0, "failed": 0, "truncated": 0, "incorrect": 0, "kept": 0}
    rows = []
    for ex in examples:
        for ci, rationale in enumerate(ex.rationales):
            counts["requested"] += 1
            predicted, correct = grade_final_statement(rationale, ex)
            counts["incorrect"] += not correct
            kept = correct or cfg.keep == "all"
            counts["kept"] += kept
            rows.append({"teacher_fp": teacher_fp, "dataset": ex.dataset, "sample_id": ex.sample_id, "completion_index": ci,
                         "rationale": rationale, "predicted": predicted, "correct": correct, "truncated": False,
                         "kept": kept, "request_key": None})
    return rows, counts


def _run_coroutine(coro, stopper: StopOnSignal):
    """asyncio.run, also from a thread whose event loop is already running (notebooks, async
    hosts); a stop signal cancels the coroutine in either case and raises TeacherInterrupted."""
    try:
        with stopper.installed():
            return run_coroutine(stopper.run(coro))
    except (asyncio.CancelledError, concurrent.futures.CancelledError):
        if stopper.signum is not None:
            raise TeacherInterrupted(stopper.signum) from None
        raise


def _failure(summary: dict, cfg: TeacherConfig) -> Optional[str]:
    """Why this outcome must fail the stage, or None."""
    f = summary["filter"]
    if summary.get("stopped"):
        return f"teacher stopped early ({summary['stopped']}); saved responses are kept, rerun to continue"
    if f["requested"] and f["failed"] / f["requested"] > cfg.max_failed_fraction:
        return (f"teacher: {f['failed']} of {f['requested']} requests failed, more than teacher.max_failed_fraction="
                f"{cfg.max_failed_fraction}; the responses are kept and a rerun retries only the failed requests "
                "(see teacher_failures for each error)")
    if summary["source"] == "dataset" and f["requested"] and f["kept"] / f["requested"] < cfg.min_kept_fraction:
        return (f"teacher.source=dataset: the answer filter kept {f['kept']} of {f['requested']} rationales "
                f"({f['incorrect']} dropped as inconsistent with the gold answer, {f['truncated']} as truncated), "
                f"less than teacher.min_kept_fraction={cfg.min_kept_fraction} (lower it to train on these anyway; recorded "
                f"Fine-tune-CoT rationales state no answer, their two-step answers come with teacher.server.backend=replay). "
                f"{summary.get('example_dropped', '')}").rstrip()
    if f["kept"] == 0:
        return "teacher: no rationale survived the filter; see teacher_failures and the filter counts"
    return None


def format_summary(summary: dict) -> str:
    f = summary["filter"]
    lines = [
        f"teacher: {summary['source']} via {summary.get('endpoint_description', '-')}, model {summary.get('model', '-')}",
        f"  requested {f['requested']}  failed {f['failed']}  truncated {f['truncated']}  incorrect {f['incorrect']}  kept {f['kept']}",
    ]
    if "usage" in summary:
        u = summary["usage"]
        lines.append(f"  calls {u['calls']}  cached {u['cached']}  tokens {u['prompt_tokens']}+{u['completion_tokens']}  "
                     f"cost ${u['cost_usd']:.4f}  {u['elapsed_s']} s  stopped: {summary['stopped'] or 'no'}")
    return "\n".join(lines)


def run_teacher_stage(examples: list[Example], cfg: TeacherConfig, store: RequestStore, teacher_fp: str,
                      progress: Optional[ProgressCallback] = None) -> TeacherOutcome:
    """Rationales for `examples` (pass only the splits that need them), cached in `store`."""
    started = time.monotonic()
    datasets = sorted({ex.dataset for ex in examples})
    if cfg.source == "dataset":
        rows, counts = _dataset_rows(examples, cfg, teacher_fp)
        summary = {"source": "dataset", "datasets": datasets, "filter": counts, "stopped": None, "complete": True,
                   "elapsed_s": round(time.monotonic() - started, 3)}
        dropped = next((r for r in rows if not r["kept"]), None)
        if dropped is not None:
            summary["example_dropped"] = (f"Example dropped: {dropped['dataset']}/{dropped['sample_id']} gold "
                                          f"{_gold(examples, dropped)!r}, read {dropped['predicted']!r} from "
                                          f"{_tail(dropped['rationale'])!r}")
        print(format_summary(summary), file=sys.stderr)
        return TeacherOutcome(rows, summary, _failure(summary, cfg))
    try:
        template = load_template(cfg.prompt, cfg.few_shot_file)
    except ValueError as e:
        raise TeacherSetupError(str(e)) from None
    usage = Usage(0, progress)
    with teacher_endpoint(cfg) as (base_url, api_key, description):
        run = _StageRun(examples, cfg, store, teacher_fp, template, base_url, api_key, usage)
        try:
            plan, rationales, answers, answer_keys = _run_coroutine(run.run(), StopOnSignal())
        finally:
            usage.close()
    rows, counts = _rationale_rows(plan, rationales, answers, answer_keys, cfg, template, teacher_fp)
    summary = {
        "source": "api", "datasets": datasets, "mode": cfg.mode, "endpoint": cfg.endpoint, "model": cfg.model,
        "endpoint_description": description, "template_version": template.version, "filter": counts,
        "server_style": cfg.server.style if cfg.base_url is None and cfg.server.backend == "scripted" else None,
        "usage": usage.info(), "stopped": run.stop_reason, "complete": counts["failed"] == 0 and run.stop_reason is None,
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    text = format_summary(summary)
    print(text, file=sys.stderr)
    log.info(text)
    return TeacherOutcome(rows, summary, _failure(summary, cfg))


def _gold(examples: Sequence[Example], row: dict) -> str:
    return next((ex.answer for ex in examples if ex.dataset == row["dataset"] and ex.sample_id == row["sample_id"]), "?")


def _tail(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "…" + text[-limit:]
