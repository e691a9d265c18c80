"""Stage fingerprints and the plan of one pipeline run.

A stage's fingerprint hashes its name, a code version, its own config section and the
fingerprints of its upstream stages (DESIGN §2). Fingerprints depend on config only, never on
outputs, so the whole plan is known before any work starts: the flow can decide which stages
to refresh up front, and a stage's Prefect cache key is simply `stage:fingerprint`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skipthink.config import PipelineConfig, canonical_json, stable_hash

# Bump a stage's version when its code changes what it writes; that stage and everything
# downstream then recompute.
CODE_VERSIONS = {
    "data": "1",
    "teacher": "1",
    "chunk": "1",
    "student": "2",
    "train": "2",
    "skipdata": "2",
    "evaluate": "1",
    "report": "2",
}
# Stage names a user can refresh, in pipeline order.
STAGES = tuple(CODE_VERSIONS)
BASE_METHODS = ("answer-only", "ft", "cwt-ac", "cwt-sbc")
SKIP_METHODS = ("stt", "skipall")
# Teacher fields that change how requests are sent, not what comes back.
_TEACHER_OPERATIONAL = {
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "max_retries",
    "timeout_s",
    "backoff_base_s",
    "backoff_max_s",
    "batch_poll_s",
    "prices",
    "batch_discount",
    "max_cost_usd",
    "api_key_env",
}


def fingerprint(stage: str, section: Any, upstream: list[str] | tuple[str, ...] = ()) -> str:
    return stable_hash(stage, CODE_VERSIONS[stage], canonical_json(section), *upstream)


def teacher_section(cfg: PipelineConfig) -> dict:
    section = cfg.teacher.model_dump(mode="json")
    for k in _TEACHER_OPERATIONAL:
        section.pop(k, None)
    if cfg.teacher.base_url is not None:
        section.pop("server")  # the built-in server is not used
    return section


def _evaluation_section(cfg: PipelineConfig) -> dict:
    section = cfg.evaluation.model_dump(mode="json")
    section.pop("methods")
    return section


@dataclass
class StageNode:
    key: str  # e.g. "train:cwt-sbc"
    stage: str  # e.g. "train"
    fp: str
    upstream: list[str] = field(default_factory=list)  # keys


@dataclass
class Plan:
    nodes: dict[str, StageNode]

    def fp(self, key: str) -> str:
        return self.nodes[key].fp

    def downstream_of(self, stages: set[str]) -> set[str]:
        """Keys of every node whose stage is in `stages`, plus everything depending on them."""
        hit = {k for k, n in self.nodes.items() if n.stage in stages}
        changed = True
        while changed:
            changed = False
            for k, n in self.nodes.items():
                if k not in hit and any(u in hit for u in n.upstream):
                    hit.add(k)
                    changed = True
        return hit


def plan(cfg: PipelineConfig) -> Plan:
    nodes: dict[str, StageNode] = {}

    def add(key: str, stage: str, section: Any, upstream: list[str]) -> None:
        nodes[key] = StageNode(key, stage, fingerprint(stage, section, [nodes[u].fp for u in upstream]), upstream)

    add("data", "data", cfg.dataset, [])
    add("teacher", "teacher", teacher_section(cfg), ["data"])
    add("chunk", "chunk", {"num_chunks": cfg.chunking.num_chunks}, ["teacher"])
    add("student", "student", cfg.student, ["chunk"])
    methods = cfg.evaluation.methods
    for m in methods:
        if m in BASE_METHODS:
            section = {"method": m, "training": cfg.training.model_dump(mode="json")}
            if m == "cwt-sbc":
                section["chunking"] = cfg.chunking.model_dump(mode="json")
            add(f"train:{m}", "train", section, ["chunk", "student"])
    if any(m in SKIP_METHODS for m in methods):
        add("skipdata", "skipdata", cfg.skip, ["train:cwt-sbc"])
        for m in SKIP_METHODS:
            if m in methods:
                ups = ["chunk", "student", "train:cwt-sbc"] + (["skipdata"] if m == "stt" else [])
                add(f"train:{m}", "train", {"method": m, "training": cfg.training.model_dump(mode="json")}, ups)
    for m in methods:
        add(f"evaluate:{m}", "evaluate", {"method": m, "evaluation": _evaluation_section(cfg)}, ["data", f"train:{m}"])
    add("report", "report", {"run_name": cfg.run_name, "methods": list(methods)}, [f"evaluate:{m}" for m in methods])
    return Plan(nodes)
