"""Throwaway certificates for the TLS tests: a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, and a client certificate from another CA."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool = False, sans=()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key) -> None:
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def write_certificates(directory: Path) -> Path:
    """ca.crt, server.crt/key, client.crt/key (signed by ca), rogue.crt/key (another CA)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, rogue_ca_key = _key(), _key()
    ca = _cert("foryou test CA", ca_key, _name("foryou test CA"), ca_key, ca=True)
    _write(directory, "ca", ca, ca_key)
    server_key = _key()
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    _write(directory, "server", _cert("localhost", server_key, ca.subject, ca_key, sans=sans), server_key)
    client_key = _key()
    _write(directory, "client", _cert("foryou client", client_key, ca.subject, ca_key), client_key)
    rogue_key = _key()
    _write(directory, "rogue", _cert("rogue client", rogue_key, _name("rogue CA"), rogue_ca_key), rogue_key)
    return directory
