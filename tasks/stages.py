"""The stage registry and the plan of one pipeline run.

`REGISTRY` lists every stage (its `StageSpec`: name, code version, config section, named
inputs, presence check, body) in pipeline order. `plan(cfg)` instantiates it — one node per
stage, or per method for `train` and `evaluate` — and gives every node its fingerprint: a hash
of the stage name, its code version, its config section and its inputs' fingerprints
(docs/DESIGN.md §3). Fingerprints depend on config only, never on outputs, so the whole plan is
known before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from skipthink.config import PipelineConfig, canonical_json, stable_hash
from skipthink.inputs import file_inputs, merge_inputs
from tasks import chunk, data, evaluate, report, skipdata, student, teacher, train
from tasks.runtime import StageContext, StageSpec, execute, open_db

REGISTRY: dict[str, StageSpec] = {s.name: s for s in (data.SPEC, teacher.SPEC, chunk.SPEC, student.SPEC, train.SPEC, skipdata.SPEC, evaluate.SPEC, report.SPEC)}
# Stage names a user can refresh, in pipeline order.
STAGES = tuple(REGISTRY)


def fingerprint(spec: StageSpec, section, input_fps: dict[str, str]) -> str:
    return stable_hash(spec.name, spec.version, canonical_json(section), *(f"{k}={v}" for k, v in sorted(input_fps.items())))


@dataclass
class StageNode:
    key: str  # e.g. "train:cwt-sbc"
    stage: str  # e.g. "train"
    method: Optional[str]
    fp: str
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> node key


@dataclass
class Plan:
    nodes: dict[str, StageNode]  # in an order where every node follows its inputs

    def fp(self, key: str) -> str:
        return self.nodes[key].fp

    def input_fps(self, key: str) -> dict[str, str]:
        return {name: self.nodes[k].fp for name, k in self.nodes[key].inputs.items()}

    def downstream_of(self, keys: set[str]) -> set[str]:
        """`keys` plus every node that depends on one of them, directly or not."""
        hit = set(keys)
        for k, n in self.nodes.items():  # nodes are in dependency order: one pass suffices
            if any(u in hit for u in n.inputs.values()):
                hit.add(k)
        return hit

    def upstream_of(self, keys: set[str]) -> set[str]:
        """`keys` plus every node they depend on, directly or not."""
        hit = set(keys)
        for k in reversed(list(self.nodes)):  # reverse dependency order: one pass suffices
            if k in hit:
                hit.update(self.nodes[k].inputs.values())
        return hit

    def only(self, keys: set[str]) -> "Plan":
        """The sub-plan of `keys` (which must include their inputs), in the same order."""
        return Plan({k: n for k, n in self.nodes.items() if k in keys})

    def of_stages(self, stages: set[str]) -> set[str]:
        return {k for k, n in self.nodes.items() if n.stage in stages}

    def waves(self) -> list[list[str]]:
        """Groups of nodes that depend only on earlier groups (run one group at a time)."""
        level: dict[str, int] = {}
        for k, n in self.nodes.items():
            level[k] = 1 + max((level[u] for u in n.inputs.values()), default=-1)
        return [[k for k in self.nodes if level[k] == lv] for lv in range(max(level.values(), default=-1) + 1)]


def node_key(stage: str, method: Optional[str]) -> str:
    return stage if method is None else f"{stage}:{method}"


def plan(cfg: PipelineConfig) -> Plan:
    nodes: dict[str, StageNode] = {}
    files = file_inputs(cfg)  # contents (size + sha256) of every file a stage reads, not just its path
    pending = [(spec, m) for spec in REGISTRY.values() for m in spec.instances(cfg)]
    # Stages are listed in pipeline order, but a method's training can need another method's
    # (STT needs CWT-SBC, and skip data in between): add nodes as their inputs become known.
    while pending:
        progressed = False
        for spec, m in list(pending):
            inputs = spec.inputs(cfg, m)
            if all(k in nodes for k in inputs.values()):
                section = merge_inputs(spec.section(cfg, m), files.get(spec.name, {}))
                fp = fingerprint(spec, section, {name: nodes[k].fp for name, k in inputs.items()})
                nodes[node_key(spec.name, m)] = StageNode(node_key(spec.name, m), spec.name, m, fp, inputs)
                pending.remove((spec, m))
                progressed = True
        if not progressed:
            missing = sorted(node_key(s.name, m) for s, m in pending)
            raise ValueError(f"plan: inputs of {', '.join(missing)} are not part of this run")
    return Plan(nodes)


def context(cfg: PipelineConfig, p: Plan, key: str, force: bool = False, run_token: str = "") -> StageContext:
    node = p.nodes[key]
    return StageContext(cfg, node.stage, key, node.fp, node.method, p.input_fps(key), open_db(cfg), force=force, run_token=run_token)


def run_node(cfg: PipelineConfig, key: str, force: bool = False) -> dict:
    """Run one node of the plan in this process, without Prefect (its inputs must be present)."""
    p = plan(cfg)
    return execute(REGISTRY[p.nodes[key].stage], context(cfg, p, key, force))
