"""The distill flow's parameters as the Prefect UI's Run form shows them.

- `preset`: a choice of the shipped presets (read from `skipthink.config.PRESETS`).
- `config`: optional overrides of any config field, shaped like the config tree, every field
  with its description and bounds but empty by default: the run uses the preset, and only the
  fields a user fills in replace the preset's. A complete config (what the CLI and sweeps pass)
  overrides everything, explicit nulls included.
- `refresh`: a multi-select of stage names.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from skipthink.config import PRESETS, PipelineConfig, preset_dict, validate_config
from tasks.stages import STAGES

PresetName = Literal[PRESETS]  # type: ignore[valid-type]  (a Literal of the tuple's names)
StageName = Literal[STAGES]  # type: ignore[valid-type]


def _model_class(annotation: Any) -> Optional[type[BaseModel]]:
    """The BaseModel inside `Model` or `Optional[Model]`, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _model_class(args[0])
    return None


class Overrides(BaseModel):
    """Base of the generated override models. `from_attributes` lets a full `PipelineConfig`
    instance validate as overrides of everything."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


@lru_cache(maxsize=None)
def overrides_model(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with every field optional and unset by default; nested sections likewise."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        section = _model_class(info.annotation)
        if section is not None:
            sub = overrides_model(section)
            fields[name] = (sub, Field(default_factory=sub, description=info.description))
        else:
            inner = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            fields[name] = (Optional[inner], Field(None, description=info.description))
    return create_model(f"{model.__name__}Overrides", __base__=Overrides, __doc__=model.__doc__, **fields)


ConfigOverrides = overrides_model(PipelineConfig)


def set_fields(overrides: BaseModel) -> dict[str, Any]:
    """The fields a caller set, as a nested JSON dict; nulls and sections with nothing set are left out."""
    dumped = overrides.model_dump(mode="json", exclude_unset=True)
    out: dict[str, Any] = {}
    for name, value in dumped.items():
        section = getattr(overrides, name)
        if isinstance(section, Overrides):
            nested = set_fields(section)
            if nested:
                out[name] = nested
        elif value is not None:
            out[name] = value
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_config(preset: str, config: Optional[BaseModel | dict]) -> PipelineConfig:
    """The preset, with the fields `config` sets laid over it, validated."""
    if isinstance(config, PipelineConfig):
        return validate_config(config)  # complete: nothing of the preset is left
    if config is None:
        return validate_config(preset_dict(preset))
    overrides = config if isinstance(config, BaseModel) else ConfigOverrides.model_validate(config)
    return validate_config(_merge(preset_dict(preset), set_fields(overrides)))


def run_name_for(preset: str, config: Optional[BaseModel | dict]) -> str:
    """`coin_flip-demo-seed0`: dataset, preset (or the run name when one was given), seed."""
    cfg = resolve_config(preset, config)
    if cfg.dataset.name in cfg.run_name:  # a sweep's label already says it all
        return cfg.run_name.replace("/", "-")
    label = preset if cfg.run_name in PRESETS else cfg.run_name
    return f"{cfg.dataset.name}-{label}-seed{cfg.dataset.seed}".replace("/", "-")


def distill_run_name() -> str:
    """Prefect's `flow_run_name` callable: reads the run's parameters from the runtime context."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    try:
        return run_name_for(parameters.get("preset") or "demo", parameters.get("config"))
    except ValueError:  # an invalid config fails the run itself, with the field's name
        return "distill-invalid-config"
