"""A private CA and a server certificate for the simulators' TLS endpoints.

Clients trust ``ca.pem`` (curl's CAINFO, requests' ``verify=``), never the server certificate
itself, so the server certificate can be reissued (for another ``--host``) without clients
changing anything. Both live in the state directory and are reused across runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
# Below 398 days so that clients enforcing the CA/Browser Forum maximum still accept it.
SERVER_VALIDITY = dt.timedelta(days=397)
# Reissue well before expiry so that a long-running simulator does not expire mid-benchmark.
RENEW_BEFORE = dt.timedelta(days=7)
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    ca_path: Path
    cert_path: Path
    key_path: Path


def ensure_tls(state_dir: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Return the CA and server files in ``state_dir``, creating or renewing what is missing.

    1. Reuse ``ca.pem``/``ca-key.pem`` if both exist and the CA is not about to expire; else
       create a new CA (which forces a new server certificate).
    2. Reuse ``server.pem``/``server-key.pem`` if signed by that CA, valid, and naming ``host``;
       else issue a new one for localhost, 127.0.0.1, ::1 and ``host``.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server-key.pem")
    ca_key_path = state_dir / "ca-key.pem"
    names = _names_for(host)

    ca = _load_cert(files.ca_path)
    ca_key = _load_key(ca_key_path)
    if ca is None or ca_key is None or not _fresh(ca):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _make_ca(ca_key)
        _write_private(ca_key_path, _key_pem(ca_key))
        _write(files.ca_path, ca.public_bytes(serialization.Encoding.PEM))

    cert = _load_cert(files.cert_path)
    if (
        cert is None
        or _load_key(files.key_path) is None
        or not _fresh(cert)
        or cert.issuer != ca.subject
        or not names <= _san_names(cert)
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _make_server_cert(key, ca, ca_key, names)
        _write_private(files.key_path, _key_pem(key))
        _write(files.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return files


def _names_for(host: str) -> set[str]:
    names = set(DEFAULT_NAMES)
    # A wildcard bind address is not a name a client connects to.
    if host and host not in ("0.0.0.0", "::"):  # noqa: S104
        names.add(host)
    return names


def _make_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Herald gatewaysim CA")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_server_cert(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: set[str],
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = []
    for name in sorted(names):
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            san.append(x509.DNSName(name))
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # OpenSSL's strict verification (Python 3.13's default) requires both key identifiers.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


def _san_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    # Write then rename, so a simulator starting concurrently never reads half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_private(path: Path, data: bytes) -> None:
    _write(path, data, 0o600)
