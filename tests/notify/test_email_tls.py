"""The e-mail channel's STARTTLS and implicit TLS against a real aiosmtpd server on 127.0.0.1.

The certificates are made here: a private CA and a server certificate it signs for
``127.0.0.1`` (IP SAN) and ``localhost``. The adapter verifies with the system's defaults
(``ssl.create_default_context()``), which read ``SSL_CERT_FILE``: pointing it at the CA is
how the private CA is trusted.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from golive.adapters.notify import ChannelConfig, Mentions, Message, send
from golive.testing.receivers import SmtpReceiver, smtp_receiver

MESSAGE = Message(
    title="[shop] order #7 deployed on test",
    markdown="**order #7** deployed on `test`",
    text="order #7 deployed on test\n\n- api: ok\n- web: ok",
    html="<p><b>order #7</b> deployed on <code>test</code></p>",
    link="https://golive.example.com/orders/7",
    mentions=Mentions(emails=("lead@example.com",)),
    event="deploy_succeeded",
)
USER, PASSWORD = "mailer", "pa55word-secret"


# -- certificates -------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                      names: list[x509.GeneralName],
                      ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    ca_file: Path          # the CA that signed the server's certificates
    other_ca_file: Path    # a CA that signed nothing here
    server: ssl.SSLContext                # for 127.0.0.1 (IP SAN) and localhost
    server_wrong_name: ssl.SSLContext     # signed by the CA, but only for mail.example.com


def _server_context(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey,
                    cert: x509.Certificate) -> ssl.SSLContext:
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(_pem(cert))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _make_ca("golive test CA")
    _, other_cert = _make_ca("golive other CA")
    (directory / "ca.pem").write_bytes(_pem(ca_cert))
    (directory / "other-ca.pem").write_bytes(_pem(other_cert))
    right = _make_server_cert(ca_key, ca_cert, [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    wrong = _make_server_cert(ca_key, ca_cert, [x509.DNSName("mail.example.com")])
    return Pki(ca_file=directory / "ca.pem", other_ca_file=directory / "other-ca.pem",
               server=_server_context(directory, "server", *right),
               server_wrong_name=_server_context(directory, "wrong", *wrong))


# -- the server ---------------------------------------------------------------------------------


@dataclass
class TlsReceiver(SmtpReceiver):
    """An ``SmtpReceiver`` that also notes the TLS of the connection at login and DATA."""

    tls_at_login: list[str | None] = field(default_factory=list)
    tls_at_data: list[str | None] = field(default_factory=list)

    @staticmethod
    def _tls(server: SMTP) -> str | None:
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        return ssl_object.version() if ssl_object is not None else None

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        self.tls_at_data.append(self._tls(server))
        return await super().handle_DATA(server, session, envelope)

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        self.tls_at_login.append(self._tls(server))
        return super().authenticate(server, session, envelope, mechanism, auth_data)


@contextmanager
def tls_server(mode: str, context: ssl.SSLContext, *, login: bool = True,
               ) -> Iterator[TlsReceiver]:
    """``mode`` "starttls": plain, STARTTLS required before MAIL, AUTH only after STARTTLS;
    "tls": TLS from the first byte (aiosmtpd offers AUTH there only with
    ``auth_require_tls=False``: it counts STARTTLS alone as TLS)."""
    receiver = TlsReceiver(user=USER if login else None, password=PASSWORD if login else None)
    options: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        if mode == "starttls" else {"ssl_context": context, "auth_require_tls": False})
    with smtp_receiver(receiver=receiver, **options):
        yield receiver


def mail_channel(box: SmtpReceiver, tls: str, **changes: Any) -> ChannelConfig:
    settings: dict[str, Any] = {
        "type": "email", "smtp_host": box.host, "smtp_port": box.port, "smtp_tls": tls,
        "smtp_user": USER, "smtp_password": PASSWORD, "mail_from": "golive@example.com",
        "to": ("dev@example.com", "qa@example.com"),
    }
    return ChannelConfig(**{**settings, **changes})


def assert_delivered(box: TlsReceiver) -> None:
    (mail,) = box.messages
    (envelope,) = box.envelopes
    assert mail["Subject"] == MESSAGE.title
    assert mail["From"] == "golive@example.com"
    assert mail["To"] == "dev@example.com, qa@example.com"
    assert mail["Cc"] == "lead@example.com"
    assert envelope.mail_from == "golive@example.com"
    assert envelope.rcpt_tos == ["dev@example.com", "qa@example.com", "lead@example.com"]
    assert mail.get_content_type() == "multipart/alternative"
    text, rich = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and rich is not None
    plain, markup = (str(part.get_content()).replace("\r\n", "\n") for part in (text, rich))
    assert MESSAGE.text in plain and MESSAGE.link in plain
    assert MESSAGE.html in markup and f'href="{MESSAGE.link}"' in markup


# -- trusted: delivered over TLS ----------------------------------------------------------------


def test_starttls_then_login_delivers(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    with tls_server("starttls", pki.server) as box:
        answer = send(mail_channel(box, "starttls"), MESSAGE, timeout=5)
        assert answer.ok and answer.status == 250, answer
        assert_delivered(box)
        assert box.logins in (["LOGIN:mailer"], ["PLAIN:mailer"])
        (at_login,) = box.tls_at_login
        (at_data,) = box.tls_at_data
    assert at_login is not None and at_login.startswith("TLS")  # logged in after STARTTLS
    assert at_data == at_login


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_implicit_tls_login_delivers(pki: Pki, monkeypatch: pytest.MonkeyPatch,
                                     host: str) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    with tls_server("tls", pki.server) as box:
        answer = send(mail_channel(box, "tls", smtp_host=host), MESSAGE, timeout=5)
        assert answer.ok and answer.status == 250, answer
        assert_delivered(box)
        assert len(box.logins) == 1
        (at_login,) = box.tls_at_login
        (at_data,) = box.tls_at_data
    assert at_login is not None and at_login.startswith("TLS")
    assert at_data == at_login


def test_starttls_required_server_refuses_plain(pki: Pki,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the STARTTLS test: without TLS this server takes nothing."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    with tls_server("starttls", pki.server, login=False) as box:
        answer = send(mail_channel(box, "none", smtp_user="", smtp_password=""), MESSAGE,
                      timeout=5)
        assert box.messages == []
    assert (answer.ok, answer.status, answer.retryable) == (False, 530, False)
    assert "STARTTLS" in answer.error


# -- not trusted: a setting, not retried, no password shown ------------------------------------


@pytest.mark.parametrize("tls", ["starttls", "tls"])
@pytest.mark.parametrize(("problem", "said"), [
    ("other-ca", "certificate verify failed"),
    ("wrong-name", "IP address mismatch"),
])
def test_untrusted_certificate_is_not_retried(pki: Pki, monkeypatch: pytest.MonkeyPatch,
                                              tls: str, problem: str, said: str) -> None:
    trusted, context = {"other-ca": (pki.other_ca_file, pki.server),
                        "wrong-name": (pki.ca_file, pki.server_wrong_name)}[problem]
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted))
    with tls_server(tls, context) as box:
        answer = send(mail_channel(box, tls), MESSAGE, timeout=5)
        assert box.messages == [] and box.logins == [] and box.tls_at_login == []
    assert (answer.ok, answer.status, answer.retryable) == (False, None, False), answer
    assert answer.error.startswith("email: TLS with 127.0.0.1 failed:"), answer.error
    assert "CERTIFICATE_VERIFY_FAILED" in answer.error and said in answer.error
    assert PASSWORD not in answer.error + answer.body
