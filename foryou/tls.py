"""TLS for the gRPC servers and clients, off by default (loopback). See docs/durability.md.

Configured from the environment only (`TlsSettings`, FORYOU_TLS_*), so that one setting reaches
every service process `foryou up` starts and every client (HomeMixer's, the health checks,
`foryou feed`). A server with a certificate and key serves TLS only; with FORYOU_TLS_CLIENT_AUTH
it also requires a client certificate signed by FORYOU_TLS_CA (mutual TLS).
"""
from __future__ import annotations

import grpc

from foryou import config


def _read(path: str) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read TLS file {path!r}: {exc}") from exc


class TlsSettings(config.Settings):
    """Environment-only: one setting reaches every process and every client."""

    cert_file: str = config.shared("", "this process's certificate chain (PEM); a server with it and a key "
                                       "serves TLS only, a client presents it (mutual TLS)", "TLS_CERT")
    key_file: str = config.shared("", "the key of FORYOU_TLS_CERT (PEM)", "TLS_KEY")
    ca_file: str = config.shared("", "CA bundle peers are verified against (clients: default the system roots)",
                                 "TLS_CA")
    client_auth: bool = config.shared(False, "servers: require a client certificate signed by FORYOU_TLS_CA",
                                      "TLS_CLIENT_AUTH")
    server_name: str = config.shared("", "clients: the name expected in the server certificate when it differs "
                                         "from the host dialled", "TLS_SERVER_NAME")
    client_tls: bool = config.shared(False, "clients: TLS even without a certificate of their own", "TLS")

    @property
    def server_enabled(self) -> bool:
        return bool(self.cert_file and self.key_file)

    @property
    def client_enabled(self) -> bool:
        return self.client_tls or self.server_enabled or bool(self.ca_file)


def server_credentials(settings: TlsSettings | None = None) -> grpc.ServerCredentials | None:
    """Credentials for `server.add_secure_port`, or None when TLS is off."""
    s = settings or TlsSettings()
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
    s = settings or TlsSettings()
    if not s.client_enabled:
        return grpc.aio.insecure_channel(address, options=list(options))
    credentials = grpc.ssl_channel_credentials(root_certificates=_read(s.ca_file),
                                               private_key=_read(s.key_file), certificate_chain=_read(s.cert_file))
    options = list(options)
    if s.server_name:
        options.append(("grpc.ssl_target_name_override", s.server_name))
    return grpc.aio.secure_channel(address, credentials, options=options)
