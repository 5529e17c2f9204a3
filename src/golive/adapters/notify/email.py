"""E-mail through SMTP (smtplib): a multipart/alternative message, text and HTML.

``smtp_tls``: ``starttls`` (plain connection, then STARTTLS — the default, port 587),
``tls`` (TLS from the first byte, port 465) or ``none``. Logs in when ``smtp_user`` is set.
Subject = the title, To = ``channel.to``, Cc = ``message.mentions.emails``. An SMTP refusal
becomes an ``Answer`` with the reply code: 4xx is worth a retry, 5xx is not; a connection
that fails or drops is worth a retry (status None); TLS and unsupported-extension problems
are settings and are not.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from golive.adapters.notify.base import (
    Answer,
    ChannelConfig,
    Message,
    one_line,
    secrets_of,
    shown,
    title_line,
)


def build(channel: ChannelConfig, message: Message, now: Callable[[], float]) -> EmailMessage:
    """The e-mail for ``message`` (ValueError: an address or header golive cannot send)."""
    sender = channel.mail_from or channel.smtp_user
    mail = EmailMessage()
    mail["Subject"] = title_line(message.title)
    mail["From"] = sender
    mail["To"] = ", ".join(channel.to)
    if message.mentions.emails:
        mail["Cc"] = ", ".join(message.mentions.emails)
    mail["Date"] = formatdate(now())
    domain = sender.rpartition("@")[2].strip("> ") or "golive.localhost"
    mail["Message-ID"] = make_msgid("golive", domain=domain)
    if message.event:
        mail["X-Golive-Event"] = message.event
    text, body = message.text, message.html
    if message.link and message.link not in text:
        text = f"{text.rstrip()}\n\n{message.link}\n"
    if message.link and message.link not in body:
        href = html.escape(message.link, quote=True)
        body = f'{body}\n<p><a href="{href}">{href}</a></p>\n'
    mail.set_content(text)
    mail.add_alternative(body, subtype="html")
    return mail


def _code_answer(channel: ChannelConfig, code: int, detail: bytes | str, what: str) -> Answer:
    secrets = secrets_of(channel)
    said = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    reply = f"{code} {said}".strip()
    return Answer(ok=False, status=code, body=shown(reply, secrets), retryable=400 <= code < 500,
                  error=shown(one_line(f"email: {what}: {reply}"), secrets, 300))


def _no_answer(channel: ChannelConfig, what: str, retryable: bool) -> Answer:
    return Answer(ok=False, status=None, body="", retryable=retryable,
                  error=shown(one_line(f"email: {what}"), secrets_of(channel), 300))


def _deliver(channel: ChannelConfig, mail: EmailMessage, recipients: list[str],
             timeout: float) -> dict[str, tuple[int, bytes]]:
    host, port = channel.smtp_host, channel.smtp_port
    server: smtplib.SMTP
    if channel.smtp_tls == "tls":
        server = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                  context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(host, port, timeout=timeout)
    with server:
        if channel.smtp_tls == "starttls":
            server.starttls(context=ssl.create_default_context())
        if channel.smtp_user:
            server.login(channel.smtp_user, channel.smtp_password)
        return server.send_message(mail, to_addrs=recipients)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float], timeout: float) -> Answer:
    del client  # SMTP, not HTTP
    if channel.smtp_tls not in ("starttls", "tls", "none"):
        return _no_answer(channel, f"smtp_tls {channel.smtp_tls!r} is not starttls, tls or none",
                          False)
    recipients = [*channel.to, *message.mentions.emails]
    if not channel.smtp_host or not recipients:
        return _no_answer(channel, "smtp_host and at least one recipient are needed", False)
    try:
        mail = build(channel, message, now)
    except (ValueError, TypeError) as error:
        return _no_answer(channel, f"cannot build the message: {error}", False)
    try:
        refused = _deliver(channel, mail, recipients, timeout)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        said = "; ".join(f"{who}: {code} {text.decode(errors='replace')}"
                         for who, (code, text) in error.recipients.items())
        answer = _code_answer(channel, codes[0] if codes else 550, said, "recipients refused")
        retryable = bool(codes) and all(400 <= code < 500 for code in codes)
        return Answer(ok=False, status=answer.status, body=answer.body, retryable=retryable,
                      error=answer.error)
    except smtplib.SMTPAuthenticationError as error:
        return _code_answer(channel, error.smtp_code, error.smtp_error, "login refused")
    except smtplib.SMTPSenderRefused as error:
        return _code_answer(channel, error.smtp_code, error.smtp_error, "sender refused")
    except smtplib.SMTPDataError as error:
        return _code_answer(channel, error.smtp_code, error.smtp_error, "message refused")
    except smtplib.SMTPResponseException as error:  # connect, HELO and the others
        return _code_answer(channel, error.smtp_code, error.smtp_error, "refused")
    except smtplib.SMTPNotSupportedError as error:
        return _no_answer(channel, f"{channel.smtp_host}: {error}", False)
    except smtplib.SMTPServerDisconnected as error:
        return _no_answer(channel, f"{channel.smtp_host} closed the connection: {error}", True)
    except ssl.SSLError as error:
        return _no_answer(channel, f"TLS with {channel.smtp_host} failed: {error}", False)
    except smtplib.SMTPException as error:
        return _no_answer(channel, f"{channel.smtp_host}: {error}", False)
    except TimeoutError:
        return _no_answer(channel, f"{channel.smtp_host}:{channel.smtp_port} timed out", True)
    except ConnectionRefusedError:
        return _no_answer(channel, f"{channel.smtp_host}:{channel.smtp_port} connection refused",
                          True)
    except OSError as error:
        return _no_answer(channel, f"{channel.smtp_host}:{channel.smtp_port}: "
                                   f"{error.strerror or error}", True)
    if refused:
        said = "; ".join(f"{who}: {code} {text.decode(errors='replace')}"
                         for who, (code, text) in refused.items())
        return Answer(ok=True, status=250, body=shown(f"some recipients refused: {said}",
                                                      secrets_of(channel)),
                      retryable=False, error=one_line(f"email: some recipients refused: {said}"))
    return Answer(ok=True, status=250, body=f"accepted for {len(recipients)} recipient(s)",
                  retryable=False)
