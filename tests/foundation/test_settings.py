"""Settings (foryou/config.py, docs/settings.md): every setting of every command is a flag whose
help names its environment variable and default; a flag wins over the variable, which wins
over the default; `foryou up` passes its services their own settings' flags."""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

import pytest

from foryou import cli, config, service_main
from foryou.stack import StackConfig
from home_mixer.settings import HomeMixerSettings
from phoenix.settings import DEFAULT_XLA_FLAGS, PhoenixSettings
from thunder.settings import ThunderSettings

# command -> the settings classes its flags come from
COMMAND_SETTINGS = {
    "thunder": ("thunder.settings", "ThunderSettings"), "phoenix": ("phoenix.settings", "PhoenixSettings"),
    "home-mixer": ("home_mixer.settings", "HomeMixerSettings"), "broker": ("foryou.broker_cli", "BrokerSettings"),
    "up": ("foryou.up", "StackConfig", "UpSettings"), "seed": ("foryou.seed", "WorldSettings", "SeedSettings"),
    "demo": ("foryou.demo", "DemoSettings"), "train": ("phoenix.training.cli", "TrainSettings", "FollowSettings"),
    "eval": ("phoenix.evaluation.cli", "EvalSettings"), "feed": ("foryou.feed", "FeedSettings"),
    "ui": ("explorer.cli", "UiSettings"),
}


def settings_classes(command: str) -> list[type[config.Settings]]:
    module, *names = COMMAND_SETTINGS[command]
    return [getattr(importlib.import_module(module), name) for name in names]


def help_text(command: str) -> str:
    parser = argparse.ArgumentParser(prog=f"foryou {command}", formatter_class=lambda prog: argparse.HelpFormatter(
        prog, width=10_000, max_help_position=10_000))
    importlib.import_module(cli.COMMANDS[command][0]).add_arguments(parser)
    return parser.format_help()


@pytest.mark.parametrize("command", sorted(COMMAND_SETTINGS))
def test_help_lists_every_setting_with_its_variable_and_default(command):
    text = help_text(command)
    lines = text.splitlines()
    for cls in settings_classes(command):
        for owner, name, field in config.leaves(cls):
            if (field.json_schema_extra or {}).get("flag") is False:
                continue
            assert field.description, f"{owner.__name__}.{name} has no description"
            flag = f"--{name.replace('_', '-')}"
            line = next((ln for ln in lines if ln.strip().startswith(flag + " ") or ln.strip().startswith(flag + ",")),
                        None)
            assert line is not None, f"{command}: no {flag}"
            assert f"env {config.env_name(owner, name, field)}," in line or "here)" in line, line


def test_services_have_their_own_variables_except_the_shared_ones():
    names = {cls: {config.env_name(o, n, f) for o, n, f in config.leaves(cls)}
             for cls in (ThunderSettings, PhoenixSettings, HomeMixerSettings)}
    shared = set.intersection(*names.values())
    assert shared == {"FORYOU_KAFKA_BOOTSTRAP", "FORYOU_LOG_LEVEL"}
    assert "FORYOU_THUNDER_PORT" in names[ThunderSettings] and "FORYOU_PHOENIX_HOST" in names[PhoenixSettings]
    assert "FORYOU_PHOENIX_MAX_CANDIDATES" in names[PhoenixSettings]  # server limits are settings
    assert "FORYOU_THUNDER_MAX_LOOKUP_IDS" in names[ThunderSettings]  # nested limits flattened in


def test_a_flag_wins_over_the_variable_which_wins_over_the_default(monkeypatch):
    parser = argparse.ArgumentParser()
    config.add_settings(parser, ThunderSettings)
    assert config.from_args(ThunderSettings, parser.parse_args([])).port == config.THUNDER_PORT
    monkeypatch.setenv("FORYOU_THUNDER_PORT", "6001")
    monkeypatch.setenv("FORYOU_THUNDER_MAX_RESULTS", "7")
    monkeypatch.setenv("FORYOU_PHOENIX_PORT", "6002")  # another service's: not Thunder's
    s = config.from_args(ThunderSettings, parser.parse_args([]))
    assert (s.port, s.query.max_results) == (6001, 7)
    s = config.from_args(ThunderSettings, parser.parse_args(["--port", "6003", "--max-results", "9"]))
    assert (s.port, s.query.max_results) == (6003, 9)
    monkeypatch.setenv("FORYOU_LOG_LEVEL", "debug")  # shared, any case
    assert config.from_args(PhoenixSettings, {}).log_level == "DEBUG"


def test_a_bad_variable_is_refused_by_name(monkeypatch, capsys):
    monkeypatch.setenv("FORYOU_THUNDER_PORT", "not-a-port")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["thunder"])
    assert exit_info.value.code == 2
    assert "port" in capsys.readouterr().err


def test_booleans_and_repeated_settings():
    parser = argparse.ArgumentParser()
    config.add_settings(parser, PhoenixSettings)
    assert config.from_args(PhoenixSettings, parser.parse_args(["--no-warm-every-bucket"])).warm_every_bucket is False
    from foryou.demo import DemoSettings
    parser = argparse.ArgumentParser()
    config.add_settings(parser, DemoSettings)
    assert config.from_args(DemoSettings, parser.parse_args(["--user", "3", "--user", "5"])).user == [3, 5]


def test_the_stack_passes_each_service_its_own_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FORYOU_THUNDER_PORT", "6101")  # the stack's thunder port is Thunder's variable
    cfg = StackConfig(preset="tiny", checkpoint_dir=str(tmp_path))
    assert cfg.thunder_port == 6101 and cfg.phoenix_port == PhoenixSettings.default("port")
    from foryou.stack import Stack
    stack = Stack(cfg, write_state=False)
    for process, cls in ((stack.thunder_process(), ThunderSettings), (stack.phoenix_process(), PhoenixSettings)):
        parser = argparse.ArgumentParser()
        config.add_settings(parser, cls)
        parsed = config.from_args(cls, parser.parse_args(process.args))
        assert parsed.host == cfg.host and parsed.kafka_bootstrap == stack.kafka_bootstrap
    assert parsed.preset == "tiny" and parsed.checkpoint_dir == str(tmp_path) and parsed.port == cfg.phoenix_port
    with pytest.raises(TypeError, match="no setting"):
        config.to_argv(ThunderSettings, preset="tiny")


async def test_home_mixers_served_producer_uses_the_kafka_security_settings(monkeypatch):
    """Like every consumer (foryou/kafka.py security_options): SSL/SASL from the environment."""
    from home_mixer.side_effects import record_served

    made = {}

    class Recorder:  # records the producer's options; no broker is needed to check them
        def __init__(self, **options):
            made.update(options)

        async def start(self):
            pass

    monkeypatch.setattr(record_served, "AIOKafkaProducer", Recorder)
    monkeypatch.setenv("FORYOU_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("FORYOU_KAFKA_SASL_USERNAME", "home-mixer")
    monkeypatch.setenv("FORYOU_KAFKA_SASL_PASSWORD", "secret")
    await record_served.ServedPublisher("127.0.0.1:1")._started()
    assert made["security_protocol"] == "SASL_PLAINTEXT"
    assert (made["sasl_plain_username"], made["sasl_plain_password"]) == ("home-mixer", "secret")


def _flags_seen_by_serve(cls, monkeypatch) -> str:
    """XLA_FLAGS as `serve` (where a service imports JAX) sees them under service_main.run."""
    monkeypatch.setattr(service_main.logs, "setup", lambda *args, **kwargs: None)  # keep pytest's handlers
    seen = {}

    async def serve(settings):
        seen["flags"] = os.environ.get("XLA_FLAGS")

    service_main.run("test", cls, argparse.Namespace(metrics_port=0, blas_threads=0), serve)
    return seen["flags"]


def test_the_phoenix_process_starts_jax_with_its_xla_flags_before_the_environments(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_xnnpack=true")  # an operator's own: later, so it wins
    assert _flags_seen_by_serve(PhoenixSettings, monkeypatch) == f"{DEFAULT_XLA_FLAGS} --xla_cpu_use_xnnpack=true"
    monkeypatch.setenv("FORYOU_PHOENIX_XLA_FLAGS", "")
    monkeypatch.delenv("XLA_FLAGS")
    assert _flags_seen_by_serve(PhoenixSettings, monkeypatch) is None  # '' = XLA's defaults
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=x")
    assert _flags_seen_by_serve(ThunderSettings, monkeypatch) == "--xla_dump_to=x"  # no JAX there: untouched


def test_the_installed_xla_accepts_the_default_flags():
    """XLA aborts the process on a flag it does not know, so a jaxlib upgrade that drops one
    would stop Phoenix at start-up: run a jitted function under the defaults."""
    code = "import jax, jax.numpy as jnp; print(float(jax.jit(lambda x: x @ x)(jnp.ones((2, 2))).sum()))"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "XLA_FLAGS": DEFAULT_XLA_FLAGS},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "8.0", done.stderr[-2000:]
