import math

import pytest

from skipthink.config import ConfigError, PipelineConfig, canonical_json, load_config, parse_override


def test_presets_load_and_differ():
    demo, smoke, gpt2 = (load_config(p) for p in ("demo", "smoke", "gpt2-synthetic"))
    assert demo.run_name == "demo" and smoke.run_name == "smoke"
    assert smoke.dataset.n_train < demo.dataset.n_train
    assert gpt2.student.kind == "pretrained" and gpt2.training.lr == 3e-4
    assert gpt2.training.batch_size == 8 and gpt2.training.epochs == 20


def test_overrides_are_typed():
    cfg = load_config("demo", overrides=["chunking.num_chunks=6", "chunking.eta=inf", "dataset.name=multiarith"])
    assert cfg.chunking.num_chunks == 6
    assert math.isinf(cfg.chunking.eta)
    assert cfg.dataset.name == "multiarith"


@pytest.mark.parametrize(
    "override, field",
    [
        ("chunking.num_chunks=0", "chunking.num_chunks"),
        ("chunking.eta=-0.5", "chunking.eta"),
        ("dataset.name=nope", "dataset.name"),
        ("training.nonsense=3", "training.nonsense"),
        ("training.epochs=many", "training.epochs"),
    ],
)
def test_invalid_values_name_the_field(override, field):
    with pytest.raises(ConfigError) as err:
        load_config("demo", overrides=[override])
    assert field in str(err.value)


def test_yaml_file_and_unknown_preset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("training: {epochs: 3}\nstudent: {size: nano}\n")
    cfg = load_config("smoke", file=f)
    assert cfg.training.epochs == 3 and cfg.student.size == "nano"
    with pytest.raises(ConfigError, match="preset"):
        load_config("fast")
    with pytest.raises(ConfigError, match="not found"):
        load_config("demo", file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="a.b=value"):
        parse_override("novalue")


def test_canonical_json_is_stable_and_sensitive():
    a = load_config("demo")
    b = PipelineConfig.model_validate_json(a.model_dump_json())
    assert canonical_json(a.chunking) == canonical_json(b.chunking)
    c = load_config("demo", overrides=["chunking.eta=0.2"])
    assert canonical_json(a.chunking) != canonical_json(c.chunking)
