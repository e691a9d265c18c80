"""The distill flow's parameters: a preset choice, optional overrides over it, stage choices."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from flows.parameters import ConfigOverrides, PresetName, StageName, resolve_config, run_name_for, set_fields
from skipthink.config import PRESETS, ConfigError, load_config
from tasks.stages import STAGES


def test_choices_come_from_the_config_and_the_plan():
    assert typing.get_args(PresetName) == PRESETS
    assert typing.get_args(StageName) == STAGES


def test_empty_overrides_are_the_preset_as_is(monkeypatch, tmp_path):
    monkeypatch.setenv("SKIPTHINK_FINETUNE_COT_DIR", str(tmp_path))  # the real-data presets need one
    for name in PRESETS:
        assert resolve_config(name, ConfigOverrides()) == load_config(name)
        assert resolve_config(name, None) == load_config(name)


def test_filled_fields_replace_only_those_of_the_preset():
    overrides = ConfigOverrides.model_validate({"dataset": {"name": "multiarith", "max_test": None}, "training": {"epochs": 1}, "teacher": {}})
    assert set_fields(overrides) == {"dataset": {"name": "multiarith"}, "training": {"epochs": 1}}
    cfg = resolve_config("smoke", overrides)
    smoke = load_config("smoke")
    assert cfg.dataset.name == "multiarith" and cfg.training.epochs == 1
    assert cfg.dataset.n_train == smoke.dataset.n_train and cfg.training.lr == smoke.training.lr and cfg.run_name == "smoke"


def test_a_complete_config_replaces_the_preset():
    full = load_config("smoke", overrides=["chunking.num_chunks=4"])
    assert resolve_config("demo", ConfigOverrides.model_validate(full)) == full  # a PipelineConfig instance
    assert resolve_config("demo", full.model_dump(mode="json")) == full  # its JSON, as the API sends it


def test_overrides_keep_bounds_and_descriptions():
    with pytest.raises(ValidationError, match="epochs"):  # a field bound, checked by the form already
        ConfigOverrides.model_validate({"training": {"epochs": 0}})
    with pytest.raises(ConfigError, match="chunking.num_chunks"):  # a validator, checked on the merged config
        resolve_config("smoke", {"chunking": {"num_chunks": 0}})
    schema = ConfigOverrides.model_json_schema()
    field = schema["$defs"]["TrainingConfigOverrides"]["properties"]["epochs"]
    assert field["default"] is None and field["description"]


def test_flow_run_names_say_what_runs():
    assert run_name_for("demo", None) == "coin_flip-demo-seed0"
    assert run_name_for("smoke", {"dataset": {"name": "multiarith", "seed": 2}}) == "multiarith-smoke-seed2"
    assert run_name_for("smoke", {"run_name": "ablation"}) == "coin_flip-ablation-seed0"
    assert run_name_for("demo", {"run_name": "s/coin_flip/default/seed1"}) == "s-coin_flip-default-seed1"  # a sweep's label
