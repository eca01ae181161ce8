"""TLS for the gRPC servers and clients, off by default (loopback). See docs/durability.md.

Configured from the environment, so that one setting reaches every service process `foryou up`
starts and every client (HomeMixer's, the health checks, `foryou feed`):
- FORYOU_TLS_CERT, FORYOU_TLS_KEY: this process's certificate chain and key (PEM). A server
  with them serves TLS only; a client presents them when the server asks (mutual TLS).
- FORYOU_TLS_CA: the CA bundle that peers are verified against. Clients verify the server with
  it (default: the system roots); a server with FORYOU_TLS_CLIENT_AUTH=1 requires a client
  certificate signed by it (mutual TLS).
- FORYOU_TLS_SERVER_NAME: the name clients expect in the server certificate when it differs from
  the host they dial (e.g. dialling an IP).
- FORYOU_TLS=1 turns client-side TLS on without a client certificate.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import grpc


def _read(path: str) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read TLS file {path!r}: {exc}") from exc


@dataclass(frozen=True)
class TlsSettings:
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    client_auth: bool = False      # servers: require a client certificate signed by ca_file
    server_name: str = ""          # clients: expected server certificate name override
    client_tls: bool = False       # clients: TLS even without a certificate of their own

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None) -> "TlsSettings":
        env = os.environ if environ is None else environ

        def flag(name: str) -> bool:
            return env.get(name, "").lower() in ("1", "true", "yes", "on")

        return TlsSettings(cert_file=env.get("FORYOU_TLS_CERT", ""), key_file=env.get("FORYOU_TLS_KEY", ""),
                           ca_file=env.get("FORYOU_TLS_CA", ""), client_auth=flag("FORYOU_TLS_CLIENT_AUTH"),
                           server_name=env.get("FORYOU_TLS_SERVER_NAME", ""), client_tls=flag("FORYOU_TLS"))

    @property
    def server_enabled(self) -> bool:
        return bool(self.cert_file and self.key_file)

    @property
    def client_enabled(self) -> bool:
        return self.client_tls or self.server_enabled or bool(self.ca_file)


def server_credentials(settings: TlsSettings | None = None) -> grpc.ServerCredentials | None:
    """Credentials for `server.add_secure_port`, or None when TLS is off."""
    s = settings or TlsSettings.from_env()
    if not s.server_enabled:
        return None
    if s.client_auth and not s.ca_file:
        raise ValueError("FORYOU_TLS_CLIENT_AUTH needs FORYOU_TLS_CA (the CA client certificates are checked against)")
    return grpc.ssl_server_credentials([(_read(s.key_file), _read(s.cert_file))],
                                       root_certificates=_read(s.ca_file) if s.client_auth else None,
                                       require_client_auth=s.client_auth)


def add_port(server: grpc.aio.Server, address: str, settings: TlsSettings | None = None) -> int:
    """Bind `address` with TLS when configured, else plaintext. Returns the bound port."""
    credentials = server_credentials(settings)
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)


def channel(address: str, options: list | tuple = (), settings: TlsSettings | None = None) -> grpc.aio.Channel:
    """A client channel to `address`: TLS (with this process's certificate for mutual TLS) when
    configured, else plaintext."""
    s = settings or TlsSettings.from_env()
    if not s.client_enabled:
        return grpc.aio.insecure_channel(address, options=list(options))
    credentials = grpc.ssl_channel_credentials(root_certificates=_read(s.ca_file),
                                               private_key=_read(s.key_file), certificate_chain=_read(s.cert_file))
    options = list(options)
    if s.server_name:
        options.append(("grpc.ssl_target_name_override", s.server_name))
    return grpc.aio.secure_channel(address, credentials, options=options)
