"""Settings: one pydantic-settings class per service and per command, and the command-line
flags generated from it (docs/settings.md).

A setting is a field of a `Settings` subclass: its name, type, default and description are
written once there. From the field come
- the environment variable FORYOU_<SECTION>_<NAME> (the class's `env_prefix`, e.g.
  FORYOU_THUNDER_PORT), or a shared name for a fact every process shares (`shared(...)`, e.g.
  FORYOU_KAFKA_BOOTSTRAP);
- the flag --<name> (`add_settings`), whose help shows the description, the variable and the
  default.
A flag given on the command line wins over the variable, which wins over the default
(`from_args`). Constructing a class in-process (tests, `foryou up`) reads the variables too.
Adding a setting is one line: a field with a default and a description.
"""
from __future__ import annotations

import argparse
import types
import typing
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

# Default ports (docs/architecture.md): gRPC and Prometheus metrics per service.
HOME_MIXER_PORT = 50051
THUNDER_PORT = 50052
PHOENIX_PORT = 50053
HOME_MIXER_METRICS_PORT = 9151
THUNDER_METRICS_PORT = 9152
PHOENIX_METRICS_PORT = 9153
KAFKA_PORT = 9092
DEFAULT_HOST = "127.0.0.1"
DEFAULT_KAFKA_BOOTSTRAP = f"{DEFAULT_HOST}:{KAFKA_PORT}"
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024


def _upper(value: Any) -> str:
    return str(value).upper()


# For a Literal of upper-case names that also takes any case from the environment ("info").
UPPER = BeforeValidator(_upper)
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], UPPER]


class Settings(BaseSettings):
    """Base of every settings class: frozen, unknown names refused, read from FORYOU_ variables.
    Subclasses set `env_prefix` (FORYOU_<SECTION>_)."""

    model_config = SettingsConfigDict(env_prefix="FORYOU_", frozen=True, extra="forbid", populate_by_name=True,
                                      case_sensitive=False)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A field a subclass restates with a plain default (a service's own port) keeps the
        description of the base class's field: each description is written once."""
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            if field.description is None:
                inherited = next((b.model_fields[name] for b in cls.__mro__[1:]
                                  if issubclass(b, Settings) and name in b.model_fields), None)
                field.description = inherited.description if inherited is not None else None

    @classmethod
    def default(cls, name: str) -> Any:
        """A setting's default, for code that keeps its own dataclass (one default, here)."""
        return cls.model_fields[name].get_default(call_default_factory=True)


def prefixed(section: str) -> SettingsConfigDict:
    """The model_config of a section's class: variables FORYOU_<SECTION>_<NAME>."""
    return SettingsConfigDict(**{**Settings.model_config, "env_prefix": f"FORYOU_{section.upper()}_"})


def shared(default: Any, description: str, env: str, **kwargs) -> Any:
    """A field whose variable is FORYOU_<ENV> in every class that has it (one Kafka, one state
    directory, one log level for all processes), not the class's prefixed name."""
    return Field(default, description=description, validation_alias=f"FORYOU_{env}", **kwargs)


def same_as(cls: type[Settings], name: str, description: str | None = None) -> Any:
    """A field mirroring `cls.name`: the same default and the same environment variable (so
    `foryou up`'s thunder_port is FORYOU_THUNDER_PORT, default Thunder's port)."""
    field = cls.model_fields[name]
    return Field(field.get_default(call_default_factory=True), description=description or field.description,
                 validation_alias=env_name(cls, name, field))


def kafka_bootstrap_field(default: str = DEFAULT_KAFKA_BOOTSTRAP) -> Any:
    return shared(default, "Kafka bootstrap servers, host:port[,host:port]", "KAFKA_BOOTSTRAP")


def log_level_field(default: str = "INFO") -> Any:
    return shared(default, "log level", "LOG_LEVEL")


class ServerSettings(Settings):
    """What every gRPC service is configured by: where it listens, its Kafka, how much it
    admits (foryou/admission.py, docs/reliability.md) and its log level. A service's class
    restates as plain values the defaults that are its own (its ports, its limits)."""

    host: str = Field(DEFAULT_HOST, description="address to listen on (gRPC and metrics)")
    port: int = Field(description="gRPC port (0 = a free port)")
    metrics_port: int = Field(description="Prometheus metrics port (0 = off)")
    kafka_bootstrap: str = kafka_bootstrap_field()
    max_running: int = Field(0, description="handlers running at once, beyond it calls queue for a bounded time "
                                            "(foryou/admission.py; 0 = no bound)")
    queue_factor: float = Field(0.5, description="longest wait of a call for its turn, in service times of its method")
    # A burst of a few calls (one feed's fan-out) queues rather than being refused.
    min_queue_s: float = Field(0.01, description="... but at least this long, seconds")
    # For handlers that never yield (Thunder's): calls queued in gRPC core meanwhile reach the
    # admission gate, where their wait is seen (foryou/admission.py).
    accept_window_s: float = Field(0.0, description="after a handler finishes, the next starts once no call has "
                                                    "arrived for this long, seconds (0 = off)")
    max_concurrent_rpcs: int = Field(description="beyond it requests get RESOURCE_EXHAUSTED at once (0 = no limit)")
    max_request_bytes: int = Field(DEFAULT_MAX_REQUEST_BYTES, description="larger requests are refused "
                                                                          "(RESOURCE_EXHAUSTED)")
    # Each request's numpy work is small; idle BLAS worker threads spin-wait for the next call
    # on the cores the other services need (docs/home_mixer.md, "CPU per request").
    blas_threads: int = Field(1, description="BLAS threads of the process (numpy's matrix products; 0 = "
                                             "the library's default, one per core)")
    log_level: LogLevel = log_level_field()


# ----------------------------------------------------------------------------- flags


def _nested(annotation: Any) -> type[Settings] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, Settings) else None


def env_name(cls: type[Settings], name: str, field: FieldInfo) -> str:
    """The environment variable that sets `field` of `cls`."""
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def leaves(cls: type[Settings]) -> list[tuple[type[Settings], str, FieldInfo]]:
    """Every setting of `cls`, nested settings classes (Thunder's limits) flattened in."""
    out = []
    for name, field in cls.model_fields.items():
        sub = _nested(field.annotation)
        out.extend(leaves(sub) if sub else [(cls, name, field)])
    return out


def _flag_type(annotation: Any) -> tuple[Any, tuple | None]:
    """(argparse type, choices) of a field; optional types and lists take their inner type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is list:
        return _flag_type(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), choices
    return (annotation if annotation in (int, float, str, bool) else str), None


def _shown(field: FieldInfo) -> str:
    if field.is_required():
        return "none: required"
    default = field.get_default(call_default_factory=True)
    return "none" if default is None else repr(default) if default == "" else str(default)


def add_settings(parser: argparse.ArgumentParser, cls: type[Settings], overrides: dict[str, Any] | None = None) -> None:
    """One flag per setting of `cls`. Flags not given are left out of the parsed namespace, so
    that `from_args` can tell them from the variables and defaults. `overrides`: this
    command's own defaults for some settings (`foryou demo`'s small world); they count as
    given flags, so their variables do not apply here."""
    overrides = overrides or {}
    group = parser.add_argument_group(f"{cls.__name__} (flag, else environment variable, else default)")
    for owner, name, field in leaves(cls):
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("flag") is False:  # in-process only
            continue
        kind, choices = _flag_type(field.annotation)
        where = (f"default {overrides[name]} here" if name in overrides
                 else f"env {env_name(owner, name, field)}, default {_shown(field)}")
        help_text = f"{field.description or name} ({where})"
        flag = f"--{name.replace('_', '-')}"
        if kind is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        else:
            repeated = typing.get_origin(field.annotation) is list or list in typing.get_args(field.annotation)
            group.add_argument(flag, dest=name, type=kind, choices=choices, default=argparse.SUPPRESS,
                               action="append" if repeated else "store",
                               metavar=name.upper() if choices is None else None,
                               help=help_text + (" (repeatable)" if repeated else ""))
    parser.set_defaults(**{k: v for k, v in overrides.items() if k in {n for _, n, _ in leaves(cls)}})


S = TypeVar("S", bound="Settings")


def from_args(cls: type[S], args: argparse.Namespace | dict) -> S:
    """`cls` from the flags given (wins), else its FORYOU_ variables, else its defaults."""
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    values: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        sub = _nested(field.annotation)
        if sub is not None:
            values[name] = from_args(sub, given)
        elif name in given:
            values[name] = given[name]
    return cls(**values)


def flat(settings: Settings) -> dict[str, Any]:
    """Every setting's value by name, nested settings classes flattened in."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        out.update(flat(value) if isinstance(value, Settings) else {name: value})
    return out


def resolve(args: argparse.Namespace, *classes: type[Settings]) -> argparse.Namespace:
    """`args` with every setting of `classes` filled in (flag, else variable, else default),
    for commands whose code reads `args.<name>`."""
    values = vars(args).copy()
    for cls in classes:
        values.update(flat(from_args(cls, args)))
    return argparse.Namespace(**values)


def to_argv(cls: type[Settings], **values: Any) -> list[str]:
    """The flags that set `values` of `cls` (for a child process); refuses names `cls` lacks."""
    known = {name: field for _, name, field in leaves(cls)}
    argv: list[str] = []
    for name, value in values.items():
        if name not in known:
            raise TypeError(f"{cls.__name__} has no setting {name!r}")
        if value is None:
            continue
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{name.replace('_', '-')}")
        else:
            argv += [flag, str(value)]
    return argv


def environment_help(*classes: type[Settings]) -> str:
    """An epilog listing environment-only settings (TLS, Kafka security): shared by every
    process, so set once in the environment rather than per command."""
    lines = ["environment-only settings (every process reads them):"]
    for cls in classes:
        for owner, name, field in leaves(cls):
            lines.append(f"  {env_name(owner, name, field):<34} {field.description} (default {_shown(field)})")
    return "\n".join(lines)


class StateSettings(Settings):
    """Where the running local stack keeps its state file and durable log."""

    state_dir: str = shared(".foryou", "the local stack's state directory (stack.json, data/)", "STATE_DIR")
