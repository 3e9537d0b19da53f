"""Flags, ``--print-config`` and the docs table, all derived from the settings models.

A field ``web_port`` of a model in :mod:`monitor.pipeline.settings` is the flag ``--web-port``
and the variable ``MONITOR_WEB_PORT``; its description is the help text and its default the
documented one. A flag left out of the command line is absent from the parsed namespace
(``None``), so the environment, the secrets directory and the default still apply.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from monitor.engine.outages import OutageRules
from monitor.pipeline import settings as s
from monitor.pipeline.settings import DurationMarker, env_name, flag_name, format_duration_ms

MASK = "********"
Settings = TypeVar("Settings", bound=BaseSettings)
_NO_DEFAULT = "-"


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def has_flag(info: FieldInfo) -> bool:
    return _extra(info).get("flag", True) is not False


def _is_duration(info: FieldInfo) -> bool:
    return any(isinstance(m, DurationMarker) for m in info.metadata)


def _choices(info: FieldInfo) -> list[str] | None:
    """The values of a ``Literal`` field (or an optional one)."""
    annotation = info.annotation
    if get_origin(annotation) is not Literal:
        literals = [a for a in get_args(annotation) if get_origin(a) is Literal]
        if not literals:
            return None
        annotation = literals[0]
    return [str(choice) for choice in get_args(annotation)]


def _metavar(info: FieldInfo) -> str | None:
    """A placeholder that says what to write; argparse's upper-cased name otherwise."""
    if _is_duration(info):
        return "DURATION"
    numbers = {int: "N", float: "NUMBER"}
    return next(
        (numbers[t] for t in (info.annotation, *get_args(info.annotation)) if t in numbers), None
    )


def _is_bool(info: FieldInfo) -> bool:
    return info.annotation is bool


def show(value: Any, info: FieldInfo) -> str:
    """A setting's value as a person would write it: durations in units, secrets masked."""
    if value is None:
        return _NO_DEFAULT
    if isinstance(value, SecretStr):
        return MASK
    if _is_duration(info) and isinstance(value, int):
        return format_duration_ms(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, OutageRules):
        changed = {k: v for k, v in asdict(value).items() if v != asdict(OutageRules())[k]}
        parts = (
            "/".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in changed.values()
        )
        # Only what differs from the built-in rules: empty is a valid value meaning "none".
        return ",".join(f"{k}={p}" for k, p in zip(changed, parts, strict=True))
    return str(value)


def _default(info: FieldInfo) -> Any:
    return info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]


def _default_text(info: FieldInfo) -> str:
    return show(_default(info), info) or "built-in"


def fields_of(model: type[BaseSettings], own: bool = False) -> Iterator[tuple[str, FieldInfo]]:
    """The model's settings in declaration order; ``own``: only those the class itself adds."""
    declared = inspect.get_annotations(model)
    for name, info in model.model_fields.items():
        if not own or name in declared:
            yield name, info


def add_arguments(parser: argparse.ArgumentParser, model: type[BaseSettings]) -> None:
    """One flag per field of ``model`` that has one; parsed values are checked by the model."""
    for name, info in fields_of(model):
        if not has_flag(info):
            continue
        default = _default(info)
        where = (
            env_name(name)
            if default is None
            else f"{env_name(name)}; default {_default_text(info)}"
        )
        help_text = f"{info.description} ({where})".replace("%", "%%")
        options: dict[str, Any] = {"dest": name, "default": None, "help": help_text}
        if _is_bool(info):
            options["action"] = argparse.BooleanOptionalAction
        elif choices := _choices(info):
            options["choices"] = choices
        elif metavar := _extra(info).get("metavar") or _metavar(info):
            options["metavar"] = metavar
        parser.add_argument(flag_name(name), **options)
    secrets = [env_name(name) for name, info in fields_of(model) if not has_flag(info)]
    if secrets:
        parser.epilog = (
            f"Secrets have no flag (a command line is visible to every user of the host): "
            f"{', '.join(secrets)}, or the matching --*-file flag, or a file in --secrets-dir."
        )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings (secrets masked) and exit",
    )
    parser.set_defaults(settings_model=model)


def settings_from_args(model: type[Settings], args: argparse.Namespace) -> Settings:
    """The effective settings: the flags given, over ``MONITOR_*``, over secret files.

    Raises ValueError with one line per problem, each naming the flag and the variable.
    """
    given = {
        name: getattr(args, name)
        for name, info in fields_of(model)
        if has_flag(info) and getattr(args, name, None) is not None
    }
    secrets_dir = given.get("secrets_dir") or os.environ.get(env_name("secrets_dir"))
    try:
        return model(**given, _secrets_dir=secrets_dir)
    except ValidationError as exc:
        raise ValueError(describe(exc, model)) from None


def describe(error: ValidationError, model: type[BaseSettings]) -> str:
    """A model's validation errors as lines a person can act on."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        field = str(item["loc"][0]) if item["loc"] else None
        if field in model.model_fields:
            info = model.model_fields[field]
            where = f"{flag_name(field)} / {env_name(field)}" if has_flag(info) else env_name(field)
            message = f"{where}: {message}"
        lines.append(message)
    return "; ".join(lines)


def render_config(settings: BaseSettings) -> str:
    """``--print-config``: the effective settings as an environment file, secrets masked."""
    lines = [f"# effective settings of {type(settings).__name__}; secrets masked"]
    for name, info in fields_of(type(settings)):
        value = getattr(settings, name)
        text = "" if value is None else show(value, info)
        lines.append(f"{env_name(name)}={text}")
    return "\n".join(lines) + "\n"


def settings_table(model: type[BaseSettings]) -> str:
    """The Markdown table of the settings a model declares itself (docs/settings.md)."""
    rows = ["| Flag | Environment | Default | Meaning |", "|---|---|---|---|"]
    for name, info in fields_of(model, own=True):
        flag = f"`{flag_name(name)}`" if has_flag(info) else "(none: a secret)"
        if _is_bool(info):
            flag = f"`{flag_name(name)}` / `--no-{name.replace('_', '-')}`"
        default = _default_text(info)
        choices = _choices(info)
        meaning = str(info.description)
        if choices:
            meaning += ": " + ", ".join(f"`{c}`" for c in choices)
        rows.append(f"| {flag} | `{env_name(name)}` | `{default}` | {meaning} |")
    return "\n".join(rows) + "\n"


def settings_document() -> str:
    """docs/settings.md, whole: ``make docs`` writes it and a test keeps it equal to the models."""
    sections = (
        ("Kafka connection", s.KafkaSettings,
         "Every command that talks to Kafka: `worker`, `publish`, `simulate --sink kafka`, "
         "`ingest ... --sink kafka`, `dlq`."),
        ("Topics", s.TopicSettings,
         "Commands that create (or, with `--no-create-topics`, check) topics: `worker`, "
         "`publish`, `simulate`, `ingest`."),
        ("Outages and contracts", s.OutageSettings, "`worker` and `report`: they must agree."),
        ("Worker", s.WorkerSettings, "`monitor worker` only."),
    )  # fmt: skip
    parts = [
        "# Settings\n\n"
        "<!-- Generated from monitor/pipeline/settings.py by `make docs`; do not edit. -->\n\n"
        "Each setting is a flag and a `MONITOR_*` environment variable. A flag wins over the "
        "variable, the variable over a file named after the setting (`sasl_password`, "
        "`sasl_username`, ...) in `--secrets-dir` (a mounted Kubernetes Secret), and that "
        "over the default. Durations are written `250ms`, `90s`, `30m`, `6h` or `1d`. "
        "`--print-config` prints the effective settings with secrets masked and exits.\n"
    ]
    for title, model, scope in sections:
        parts.append(f"\n## {title}\n\n{scope}\n\n{settings_table(model)}")
    return "".join(parts)
