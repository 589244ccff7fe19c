"""Real certificates for the TLS tests, made with ``cryptography``."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def certificate(common_name: str) -> tuple[bytes, bytes, str]:
    """A new key and a self-signed certificate for 127.0.0.1 (PEM), and the certificate's
    SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return key_pem, cert_pem, cert.fingerprint(hashes.SHA256()).hex()


def install(directory: Path, key_pem: bytes, cert_pem: bytes) -> None:
    """Put a key and certificate in place as a renewal tool does: whole files, renamed in."""
    for name, data in (("key.pem", key_pem), ("cert.pem", cert_pem)):
        part = directory / f".{name}.new"
        part.write_bytes(data)
        part.replace(directory / name)
