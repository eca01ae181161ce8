"""docker-compose.yml, docker-compose.tls.yml and the Dockerfile agree with the code (Docker
cannot run here): the services exist as `foryou` commands, and each one, given its compose
environment and command, resolves its settings classes to the ports, addresses and Kafka
bootstrap that the rest of the file expects; every FORYOU_ variable the files set is one that a
settings class reads."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from foryou import cli, config, topics
from foryou.kafka import KafkaSecurity
from foryou.seed import SeedSettings, WorldSettings
from foryou.tls import TlsSettings
from home_mixer.settings import HomeMixerSettings
from phoenix.settings import PhoenixSettings
from phoenix.training.cli import FollowSettings, TrainSettings
from thunder.settings import ThunderSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
TLS_OVERRIDE = yaml.safe_load((ROOT / "docker-compose.tls.yml").read_text())
SERVICES = COMPOSE["services"]
# the settings classes each compose command resolves (its module's flags)
COMMAND_SETTINGS: dict[str, tuple[type[config.Settings], ...]] = {"thunder": (ThunderSettings,), "phoenix": (PhoenixSettings,), "home-mixer": (HomeMixerSettings,),
                    "seed": (WorldSettings, SeedSettings), "train": (TrainSettings, FollowSettings)}
ENVIRONMENT_ONLY: tuple[type[config.Settings], ...] = (TlsSettings, KafkaSecurity, config.StateSettings)


def known_variables() -> set[str]:
    classes = [c for group in COMMAND_SETTINGS.values() for c in group] + list(ENVIRONMENT_ONLY)
    return {config.env_name(owner, name, field) for cls in classes for owner, name, field in config.leaves(cls)}
KAFKA_BOOTSTRAP = f"kafka:{config.KAFKA_PORT}"
GRPC = {"thunder": config.THUNDER_PORT, "phoenix": config.PHOENIX_PORT, "home-mixer": config.HOME_MIXER_PORT}
METRICS = {"thunder": config.THUNDER_METRICS_PORT, "phoenix": config.PHOENIX_METRICS_PORT,
           "home-mixer": config.HOME_MIXER_METRICS_PORT}


def parse_as_container(service: str, monkeypatch, extra_env: dict | None = None) -> argparse.Namespace:
    """The service's settings as `foryou` inside its container resolves them (flags, then its
    environment, then the defaults)."""
    spec = SERVICES[service]
    for name in [n for n in os.environ if n.startswith("FORYOU_")]:
        monkeypatch.delenv(name)
    for name, value in {**spec.get("environment", {}), **(extra_env or {})}.items():
        monkeypatch.setenv(name, str(value))
    command, *argv = spec["command"]
    assert command in cli.COMMANDS
    parser = argparse.ArgumentParser()
    importlib.import_module(cli.COMMANDS[command][0]).add_arguments(parser)
    return config.resolve(parser.parse_args(argv), *COMMAND_SETTINGS[command])


def published(service: str) -> set[int]:
    return {int(p.split(":")[-1]) for p in SERVICES[service].get("ports", [])}


REPLICATED = {"thunder", "phoenix"}


def exposed(service: str) -> set[int]:
    """Replicas expose their ports on the compose network (host ports would clash)."""
    return published(service) | {int(p) for p in SERVICES[service].get("expose", [])}


def test_compose_has_kafka_topics_services_and_a_seed_job():
    assert {"kafka", "kafka-init", "thunder", "phoenix", "home-mixer", "seed"} <= set(SERVICES)
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}  # KRaft, one node
    assert f"PLAINTEXT://{KAFKA_BOOTSTRAP}" == env["KAFKA_ADVERTISED_LISTENERS"]
    assert config.KAFKA_PORT in published("kafka")
    assert "healthcheck" in kafka


def test_topic_init_creates_exactly_the_code_topics():
    script = "\n".join(SERVICES["kafka-init"]["command"])
    names = re.search(r"for topic in ([\w ]+); do", script).group(1).split()
    assert sorted(names) == sorted(topics.TOPICS)
    partitions = {spec.partitions for spec in topics.TOPICS.values()}
    assert partitions == {int(re.search(r"--partitions (\d+)", script).group(1))}
    assert f"--bootstrap-server {KAFKA_BOOTSTRAP}" in script
    assert SERVICES["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["thunder", "phoenix", "home-mixer"])
def test_each_service_parses_to_the_ports_it_publishes_and_checks(service, monkeypatch):
    args = parse_as_container(service, monkeypatch)
    assert args.host == "0.0.0.0"
    assert args.port == GRPC[service] and args.metrics_port == METRICS[service]
    assert exposed(service) == {GRPC[service], METRICS[service]}
    if service in REPLICATED:
        assert SERVICES[service]["deploy"]["replicas"] == 2 and not published(service)
    assert args.kafka_bootstrap == KAFKA_BOOTSTRAP
    health = " ".join(SERVICES[service]["healthcheck"]["test"])
    port_variable = config.env_name(COMMAND_SETTINGS[service][0], "port", COMMAND_SETTINGS[service][0].model_fields["port"])
    assert "foryou.health" in health and f"os.environ['{port_variable}']" in health  # the port it listens on
    deps = SERVICES[service]["depends_on"]
    if service == "home-mixer":
        # balanced over every replica the service name resolves to (docs/scaling.md)
        assert args.thunder_address == f"dns:///thunder:{config.THUNDER_PORT}"
        assert args.phoenix_address == f"dns:///phoenix:{config.PHOENIX_PORT}"
        from home_mixer.clients import Target
        assert Target.parse(args.thunder_address).target == args.thunder_address
        assert published(service) == {GRPC[service], METRICS[service]}
        assert deps == {"thunder": {"condition": "service_healthy"}, "phoenix": {"condition": "service_healthy"}}
    else:
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"
    if service == "phoenix":
        assert args.preset in ("tiny", "demo", "serving")
        volume_targets = [v.split(":")[1] for v in SERVICES["phoenix"]["volumes"]]
        assert args.checkpoint_dir in volume_targets


def test_seed_job_publishes_to_compose_kafka(monkeypatch):
    args = parse_as_container("seed", monkeypatch)
    from foryou.stack import resolve_kafka_bootstrap
    assert resolve_kafka_bootstrap(args.kafka_bootstrap) == KAFKA_BOOTSTRAP
    assert args.users > 0 and 0 < args.days <= 2
    assert SERVICES["seed"]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert SERVICES["seed"]["restart"] == "no"


TRAINERS = ["train-ranker", "train-retriever", "follow-ranker", "follow-retriever"]


@pytest.mark.parametrize("job", TRAINERS)
def test_training_jobs_read_compose_kafka_and_write_where_phoenix_polls(job, monkeypatch):
    args = parse_as_container(job, monkeypatch)
    # the one-shot jobs train once and exit; the follow services keep training (and restart)
    assert args.follow == job.startswith("follow-")
    assert (SERVICES[job].get("restart") == "no") != args.follow
    assert args.kafka_bootstrap == KAFKA_BOOTSTRAP
    phoenix_dir = parse_as_container("phoenix", monkeypatch).checkpoint_dir
    assert args.checkpoint_dir == phoenix_dir
    assert f"checkpoints:{phoenix_dir}" in SERVICES[job]["volumes"]
    assert SERVICES[job]["depends_on"]["seed"]["condition"] == "service_completed_successfully"


def test_one_dockerfile_builds_every_package_of_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.$", dockerfile, re.M)
    assert 'ENTRYPOINT ["foryou"]' in dockerfile
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M))
    includes = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in includes}
    assert packages <= copied, f"Dockerfile misses {packages - copied}"
    assert {"pyproject.toml", "protos"} <= copied | set(" ".join(copied).split())
    assert "/data/checkpoints" in dockerfile  # exists in the image, so the volume is writable
    for service in ("thunder", "phoenix", "home-mixer", "seed", *TRAINERS):
        assert SERVICES[service]["build"] == "." and SERVICES[service]["image"] == "foryou:latest"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv"} <= set(ignored)


def test_every_variable_the_compose_files_set_is_a_setting():
    """A misspelt or retired name (the services once shared FORYOU_PORT) would be ignored."""
    known = known_variables()
    for document in (COMPOSE, TLS_OVERRIDE):
        for name, spec in document["services"].items():
            unknown = {v for v in spec.get("environment", {}) if v.startswith("FORYOU_")} - known
            assert not unknown, f"{name}: {unknown} are not settings (docs/settings.md)"
    in_image = set(re.findall(r"\b(FORYOU_[A-Z_]+)=", (ROOT / "Dockerfile").read_text()))
    assert in_image and not in_image - known, in_image - known


def test_services_have_their_own_variables_and_share_only_kafka_and_log_level():
    names = {s: {v for v in SERVICES[s]["environment"] if v.startswith("FORYOU_")}
             for s in ("thunder", "phoenix", "home-mixer")}
    shared = names["thunder"] & names["phoenix"] & names["home-mixer"]
    assert shared == {"FORYOU_KAFKA_BOOTSTRAP", "FORYOU_LOG_LEVEL"}
    for service, variables in names.items():
        prefix = f"FORYOU_{service.upper().replace('-', '_')}_"
        assert all(v.startswith(prefix) for v in variables - shared), variables


@pytest.mark.parametrize("service", ["thunder", "phoenix", "home-mixer"])
def test_tls_override_turns_on_mutual_tls_with_mounted_certificates(service, monkeypatch):
    spec = TLS_OVERRIDE["services"][service]
    parse_as_container(service, monkeypatch, extra_env=spec["environment"])  # still parses with them
    tls = TlsSettings()  # as the container's process reads them
    assert tls.server_enabled and tls.client_enabled and tls.client_auth
    mounts = {v.split(":")[1] for v in spec["volumes"]}
    for path in (tls.cert_file, tls.key_file, tls.ca_file):
        assert any(path.startswith(m + "/") for m in mounts), f"{path} is not in a mounted volume"


def merged(service: str) -> dict:
    """The service's environment with docker-compose.tls.yml applied (compose merges by name)."""
    return {**SERVICES[service].get("environment", {}), **TLS_OVERRIDE["services"][service].get("environment", {})}


def listeners(value: str) -> dict[str, str]:
    """"NAME://host:port,..." -> {NAME: "host:port"}."""
    return dict(entry.split("://") for entry in value.split(","))


def in_mount(service: str, path: str) -> bool:
    mounts = {v.split(":")[1] for v in TLS_OVERRIDE["services"][service]["volumes"]}
    return any(path.startswith(m + "/") for m in mounts)


KAFKA_CLIENTS = ["thunder", "phoenix", "home-mixer", "seed", *TRAINERS]


def client_listener_protocol() -> str:
    env = merged("kafka")
    (name, address), = listeners(env["KAFKA_ADVERTISED_LISTENERS"]).items()
    assert address == KAFKA_BOOTSTRAP  # where every client connects
    return dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))[name]


def test_tls_override_runs_kafka_with_a_pem_ssl_listener_that_requires_client_certificates():
    env = merged("kafka")
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    bound = listeners(env["KAFKA_LISTENERS"])
    assert set(bound) <= set(protocols) and env["KAFKA_INTER_BROKER_LISTENER_NAME"] in bound
    assert client_listener_protocol() == "SSL"
    # the image's start script wants a JKS store password for "SSL://" listeners (see the file)
    assert "SSL://" not in env["KAFKA_ADVERTISED_LISTENERS"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert protocols[controller] == "PLAINTEXT" and int(bound[controller].split(":")[-1]) not in published("kafka")
    assert env["KAFKA_SSL_KEYSTORE_TYPE"] == env["KAFKA_SSL_TRUSTSTORE_TYPE"] == "PEM"
    assert "KAFKA_SSL_KEYSTORE_PASSWORD" not in env  # Kafka refuses one for a PEM keystore
    assert env["KAFKA_SSL_CLIENT_AUTH"] == "required"
    for path in (env["KAFKA_SSL_KEYSTORE_LOCATION"], env["KAFKA_SSL_TRUSTSTORE_LOCATION"]):
        assert in_mount("kafka", path), path
    # Kafka's own tools (health check, topic creation) connect with the client properties
    tools = TLS_OVERRIDE["services"]["kafka-init"]["environment"]["TOPICS_COMMAND_CONFIG"]
    assert in_mount("kafka-init", tools) and in_mount("kafka", tools)
    assert '--command-config "$$TOPICS_COMMAND_CONFIG"' in "\n".join(SERVICES["kafka-init"]["command"])
    assert f"--command-config {tools}" in " ".join(TLS_OVERRIDE["services"]["kafka"]["healthcheck"]["test"])


@pytest.mark.parametrize("service", KAFKA_CLIENTS)
def test_tls_override_points_every_kafka_client_at_the_ssl_listener(service, monkeypatch):
    parse_as_container(service, monkeypatch, extra_env=TLS_OVERRIDE["services"][service]["environment"])
    security = KafkaSecurity()  # as the container's process reads them
    assert security.protocol == client_listener_protocol()
    for path in (security.ssl_cafile, security.ssl_certfile, security.ssl_keyfile):  # the broker requires a client cert
        assert path and in_mount(service, path), f"{service}: {path!r} is not in a mounted volume"


def test_make_certs_writes_every_file_the_overlay_names(tmp_path):
    """scripts/make_certs.sh: the files exist, the certificate names the broker and the services,
    the broker's PEM key opens with the overlay's key password, the clients' files load."""
    import subprocess

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    subprocess.run(["sh", str(ROOT / "scripts" / "make_certs.sh"), str(tmp_path)], check=True, capture_output=True)
    local = lambda path: tmp_path / Path(path).relative_to("/certs")  # noqa: E731
    kafka = merged("kafka")
    named = [kafka["KAFKA_SSL_KEYSTORE_LOCATION"], kafka["KAFKA_SSL_TRUSTSTORE_LOCATION"],
             TLS_OVERRIDE["services"]["kafka-init"]["environment"]["TOPICS_COMMAND_CONFIG"]]
    named += [v for s in KAFKA_CLIENTS for k, v in TLS_OVERRIDE["services"][s]["environment"].items() if k.endswith(
        ("_CERT", "_KEY", "_CA", "_CAFILE", "_CERTFILE", "_KEYFILE"))]
    assert all(local(p).is_file() for p in named), [p for p in named if not local(p).is_file()]
    keystore = local(kafka["KAFKA_SSL_KEYSTORE_LOCATION"]).read_bytes()
    load_pem_private_key(keystore[:keystore.index(b"-----BEGIN CERTIFICATE")], kafka["KAFKA_SSL_KEY_PASSWORD"].encode())
    cert = x509.load_pem_x509_certificate(keystore[keystore.index(b"-----BEGIN CERTIFICATE"):])
    names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    assert {"kafka", "thunder", "phoenix", "home-mixer", "localhost"} <= names
    tools = dict(line.split("=", 1) for line in local("/certs/kafka-client.properties").read_text().split())
    assert tools["security.protocol"] == client_listener_protocol()
    assert tools["ssl.key.password"] == kafka["KAFKA_SSL_KEY_PASSWORD"]
    assert {tools["ssl.keystore.location"], tools["ssl.truststore.location"]} == {
        kafka["KAFKA_SSL_KEYSTORE_LOCATION"], kafka["KAFKA_SSL_TRUSTSTORE_LOCATION"]}
    from foryou.kafka import security_options
    client = TLS_OVERRIDE["services"]["thunder"]["environment"]
    options = security_options(KafkaSecurity(
        protocol=client["FORYOU_KAFKA_SECURITY_PROTOCOL"], ssl_cafile=str(local(client["FORYOU_KAFKA_SSL_CAFILE"])),
        ssl_certfile=str(local(client["FORYOU_KAFKA_SSL_CERTFILE"])), ssl_keyfile=str(local(client["FORYOU_KAFKA_SSL_KEYFILE"]))))
    assert options["security_protocol"] == "SSL" and options["ssl_context"].verify_mode.name == "CERT_REQUIRED"
