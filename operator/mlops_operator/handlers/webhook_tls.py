"""The approvals webhook's serving certificate when none is mounted: a CA and a leaf for the
webhook's host names, made in memory at start-up and never stored (the configuration's caBundle
gets the CA each start). Needs `cryptography`, which the default (workload) image has; the slim
operator image does not, and then MLOPS_ADMISSION_CERT_DIR must name a mounted certificate."""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Final

VALIDITY: Final = timedelta(days=365)  # the operator makes a new one on every start


def hosts_of(service: str, url: str) -> list[str]:
    """The names the API server may call the webhook by: the Service's DNS names, or the URL's host."""
    if service:
        namespace, _, name = service.partition("/")
        return [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}"]
    from urllib.parse import urlsplit

    return [urlsplit(url).hostname or "localhost"]


def self_signed(hosts: list[str]) -> tuple[ssl.SSLContext, bytes]:
    """(a server SSL context with a new leaf certificate for `hosts`, the PEM of the CA that signed it)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:  # the slim operator image
        raise RuntimeError(
            "the approvals webhook needs a certificate: set MLOPS_ADMISSION_CERT_DIR to a mounted one "
            "(tls.crt, tls.key, ca.crt; the chart's admissionWebhook.certSecret), or run the default image, "
            "which can make its own"
        ) from None
    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("mlops-operator approvals webhook CA"))
        .issuer_name(name("mlops-operator approvals webhook CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        # a CN holds at most 64 characters and a Service's DNS name can be longer; clients (the API
        # server's Go TLS) verify the subjectAltNames only, so the CN is a fixed label
        .subject_name(name("mlops-operator approvals webhook"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    context = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain reads files only: a private temporary file, removed at once
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(leaf.public_bytes(pem) + key_pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    return context, ca.public_bytes(pem)
