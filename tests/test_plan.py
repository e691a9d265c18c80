"""Fingerprints: a config change reruns exactly the stage it belongs to and what depends on it."""

from skipthink.config import load_config
from tasks.stages import plan


def changed_keys(*overrides):
    a, b = plan(load_config("smoke")), plan(load_config("smoke", overrides=list(overrides)))
    assert set(a.nodes) == set(b.nodes)
    return {k for k in a.nodes if a.fp(k) != b.fp(k)}


def test_same_config_same_fingerprints():
    assert changed_keys() == set()


def test_eta_change_reruns_sbc_and_downstream_only():
    assert changed_keys("chunking.eta=0.3") == {
        "train:cwt-sbc", "skipdata", "train:stt", "train:skipall",
        "evaluate:cwt-sbc", "evaluate:stt", "evaluate:skipall", "report",
    }


def test_num_chunks_change_keeps_data_and_teacher():
    changed = changed_keys("chunking.num_chunks=4")
    assert "data" not in changed and "teacher" not in changed
    assert {"chunk", "student", "train:ft", "train:stt", "report"} <= changed


def test_teacher_concurrency_is_not_part_of_the_fingerprint():
    assert changed_keys("teacher.max_concurrency=4", "teacher.max_retries=2") == set()
    assert "teacher" in changed_keys("teacher.temperature=0.7")


def test_refresh_chunk_covers_training_skipdata_stt_and_evaluation():
    p = plan(load_config("smoke"))
    forced = p.downstream_of({"chunk"})
    assert "data" not in forced and "teacher" not in forced
    assert {"chunk", "student", "train:cwt-sbc", "skipdata", "train:stt", "evaluate:stt", "report"} <= forced


def test_methods_subset_plans_only_what_is_needed():
    p = plan(load_config("smoke", overrides=["evaluation.methods=[ft, cwt-ac]"]))
    assert "skipdata" not in p.nodes and "train:stt" not in p.nodes
    assert {"train:ft", "train:cwt-ac", "evaluate:ft", "report"} <= set(p.nodes)


def test_mix_is_part_of_stt_only_and_chunking_of_sbc_only():
    changed = changed_keys("skip.mix=0.25")
    assert changed == {"train:stt", "train:skipall", "evaluate:stt", "evaluate:skipall", "report"}
    assert "train:ft" not in changed_keys("chunking.eta=0.3")


def test_runtime_threads_are_never_part_of_a_fingerprint():
    assert changed_keys("runtime.torch_threads=1") == set()


def test_auto_m_is_decided_by_the_chunk_stage():
    p = plan(load_config("smoke", overrides=["chunking.num_chunks=auto"]))
    assert p.nodes["student"].inputs["chunk"] == "chunk" and p.nodes["train:ft"].inputs["chunk"] == "chunk"


def test_every_node_follows_its_inputs_and_waves_respect_them():
    p = plan(load_config("smoke"))
    order = list(p.nodes)
    for key, node in p.nodes.items():
        assert all(order.index(u) < order.index(key) for u in node.inputs.values()), key
    level = {k: i for i, wave in enumerate(p.waves()) for k in wave}
    assert all(level[u] < level[k] for k, n in p.nodes.items() for u in n.inputs.values())
    assert p.nodes["train:stt"].inputs == {"data": "data", "teacher": "teacher", "chunk": "chunk", "student": "student", "base": "train:cwt-sbc", "skipdata": "skipdata"}


def test_layering_no_sql_outside_storage_and_no_stage_imports_another():
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    stage_modules = {"data", "teacher", "chunk", "student", "train", "skipdata", "evaluate", "report"}
    for path in [*root.joinpath("tasks").glob("*.py"), *root.joinpath("flows").glob("*.py")]:
        text = path.read_text()
        assert not re.search(r"\b(SELECT\b[^\"]*\bFROM|INSERT INTO|DELETE FROM|UPDATE \w+ SET)\b", text), f"SQL in {path.name}"
        if path.parent.name == "tasks" and path.stem in stage_modules:
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tasks."):
                    assert node.module.split(".")[1] not in stage_modules, f"{path.name} imports {node.module}"
    for path in root.joinpath("skipthink").rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+(prefect|storage|tasks|flows)\b", path.read_text(), re.M), path


def test_torch_threads_share_the_cores_among_concurrent_runs(monkeypatch):
    import os

    from tasks.runtime import torch_threads

    cores = os.cpu_count() or 1
    monkeypatch.delenv("SKIPTHINK_CONCURRENT_RUNS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert torch_threads(load_config("smoke")) == cores
    monkeypatch.setenv("SKIPTHINK_CONCURRENT_RUNS", "2")
    assert torch_threads(load_config("smoke")) == max(1, cores // 2)
    assert torch_threads(load_config("smoke", overrides=["runtime.torch_threads=3"])) == 3


def test_omp_num_threads_caps_the_threads_of_a_run(monkeypatch):
    """Before: torch.set_num_threads(cores) overrode OMP_NUM_THREADS=1, so a 'one-core' sweep ran
    a second compute thread and stalled beside another job."""
    import os

    import torch

    from tasks.runtime import apply_torch_threads, torch_threads

    monkeypatch.delenv("SKIPTHINK_CONCURRENT_RUNS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert torch_threads(load_config("smoke")) == 1
    before = torch.get_num_threads()
    try:
        apply_torch_threads(load_config("smoke"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    # The explicit setting still wins; a cap above the share does not raise it; junk is ignored.
    assert torch_threads(load_config("smoke", overrides=["runtime.torch_threads=2"])) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "4096")
    assert torch_threads(load_config("smoke")) == (os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    assert torch_threads(load_config("smoke")) == (os.cpu_count() or 1)


def test_a_stored_run_is_stale_only_if_it_predates_the_upstream_recomputation(home):
    """Fault: flow A recomputes an upstream stage while flow B, which found that upstream cached,
    computes the downstream stage from A's new outputs. Expected: A uses B's downstream run (it
    started after A's upstream finished); a downstream run that started before A's upstream recomputation
    is stale and recomputes."""
    from tasks.runtime import StageContext, StageSpec, execute, open_db

    cfg = load_config("smoke")
    runs = []

    def run(ctx):
        runs.append(ctx.run_token)
        ctx.summary["n"] = len(runs)

    spec = StageSpec("chunk", "v1", lambda c, m: {}, lambda c, m: {}, present=lambda ctx: True, run=run)

    def downstream(token, fresh_after=""):
        return execute(spec, StageContext(cfg, "chunk", "chunk", "fp", None, {}, open_db(cfg), run_token=token, fresh_after=fresh_after))

    first = downstream("B")  # B computes it (nothing stored yet)
    assert runs == ["B"] and first["computed_by"] == "B"
    before = "2000-01-01T00:00:00.000000"
    assert downstream("A", fresh_after=before)["computed_by"] == "B" and runs == ["B"]  # current: used
    after = "2999-01-01T00:00:00.000000"
    again = downstream("A", fresh_after=after)  # stored run predates A's upstream: stale
    assert runs == ["B", "A"] and again["computed_by"] == "A" and again["n"] == 2
    assert downstream("C")["computed_by"] == "A" and runs == ["B", "A"]  # and then it is present


def test_upstream_of_a_stage_is_exactly_what_it_needs():
    p = plan(load_config("smoke"))
    assert p.upstream_of(p.of_stages({"chunk"})) == {"data", "teacher", "chunk"}
    stt = p.upstream_of({"train:stt"})
    assert {"train:cwt-sbc", "skipdata", "student", "chunk"} <= stt and "train:ft" not in stt and "evaluate:stt" not in stt
    sub = p.only(stt)
    assert list(sub.nodes) == [k for k in p.nodes if k in stt] and sum(map(len, sub.waves())) == len(stt)
