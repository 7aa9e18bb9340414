"""The smtp handler against aiosmtpd, started in the test process by each test."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from agent_servers import CERTIFICATE, Mailbox, context, free_port, smtp_server, task

from stratexec.actors.agents.base import AgentError, OptionError
from stratexec.actors.agents.smtp import SmtpAgent, message_id

PASSWORD = "pw-9d8c7b6a5f4e"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


def agent(port: int, **options: Any) -> SmtpAgent:
    return SmtpAgent("email", {"host": "127.0.0.1", "port": port,
                               "sender": "Stratexec <robot@example.test>", **options})


def email_task(attempt: int = 1, **inputs: Any) -> Any:
    return task("email", attempt, inputs={"to": ["ann@example.test", "bob@example.test"],
                                          "subject": "June newsletter", **inputs})


def fails(kind: str, retryable: bool, call: Any) -> AgentError:
    with pytest.raises(AgentError) as raised:
        call()
    assert (raised.value.kind, raised.value.retryable) == (kind, retryable), raised.value.message
    return raised.value


def test_sends_one_message_whose_message_id_comes_from_the_idempotency_key(
        smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    attempt = email_task(body="Hello both,\nthe issue is out.")
    result = agent(port).run(attempt, context())
    (sent,) = mailbox.sent
    digest = hashlib.sha256(attempt.idempotency_key.encode()).hexdigest()[:32]
    assert result == {"recipients": ["ann@example.test", "bob@example.test"],
                      "messageId": f"<{digest}@stratexec>",
                      "reply": "250 2.0.0 Message accepted for delivery"}
    assert (sent.mail_from, sent.rcpt_tos) == (
        "robot@example.test", ["ann@example.test", "bob@example.test"])
    message = sent.message
    assert message["Message-ID"] == f"<{digest}@stratexec>"
    assert message["X-Stratexec-Idempotency-Key"] == attempt.idempotency_key
    assert message["From"] == "Stratexec <robot@example.test>"
    assert message["To"] == "ann@example.test, bob@example.test"
    assert message["Subject"] == "June newsletter"
    assert message["Date"] is not None
    assert sent.body == "Hello both,\nthe issue is out.\n"


def test_a_redelivery_has_the_same_message_id_and_a_new_attempt_another() -> None:
    first, again, second = email_task(1), email_task(1), email_task(2)
    assert message_id(first.idempotency_key) == message_id(again.idempotency_key)
    assert message_id(first.idempotency_key) != message_id(second.idempotency_key)


def test_the_body_is_the_first_upstream_text_and_the_subject_the_title(
        smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    attempt = task("email", inputs={"to": "ann@example.test"}, upstream={
        "l4-a:research": {"findings": 3}, "l4-b:content": {"text": "Ünïcode draft — ok"},
        "l4-c:content": {"text": "not this one"}})
    agent(port).run(attempt, context())
    assert mailbox.sent[0].body == "Ünïcode draft — ok\n"
    assert mailbox.sent[0].message["Subject"] == "Write the launch note"


def test_some_recipients_refused_is_a_success_that_lists_them(
        smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    attempt = email_task(body="x", to=["ok@example.test", "bounce@example.test",
                                       "later@example.test"])
    result = agent(port).run(attempt, context())
    assert result["recipients"] == ["ok@example.test"]
    assert result["refused"] == {"bounce@example.test": "550 5.1.1 No such user",
                                 "later@example.test": "450 4.2.1 Mailbox busy, try later"}
    assert [sent.rcpt_tos for sent in mailbox.sent] == [["ok@example.test"]]


@pytest.mark.parametrize(("to", "kind", "retryable"), [
    (["bounce@example.test"], "smtp_permanent", False),
    (["later@example.test"], "smtp_transient", True),
    (["bounce@example.test", "later@example.test"], "smtp_transient", True),
])
def test_every_recipient_refused(smtp: tuple[Mailbox, int], to: list[str], kind: str,
                                 retryable: bool) -> None:
    mailbox, port = smtp
    error = fails(kind, retryable, lambda: agent(port).run(email_task(body="x", to=to),
                                                           context()))
    assert error.message.startswith(f"127.0.0.1:{port}: RCPT TO: every recipient refused: ")
    assert "bounce@example.test 550 5.1.1 No such user" in error.message or kind != (
        "smtp_permanent")
    assert mailbox.sent == []


@pytest.mark.parametrize(("reply", "kind", "retryable"), [
    ("451 4.3.0 Try again later", "smtp_transient", True),
    ("554 5.6.0 Message rejected as spam", "smtp_permanent", False),
])
def test_the_reply_to_the_message(smtp: tuple[Mailbox, int], reply: str, kind: str,
                                  retryable: bool) -> None:
    mailbox, port = smtp
    mailbox.data_reply = reply
    error = fails(kind, retryable, lambda: agent(port).run(email_task(body="x"), context()))
    assert error.message == f"127.0.0.1:{port}: DATA: {reply}"


def test_a_refused_connection_is_retryable() -> None:
    port = free_port()
    error = fails("smtp_unreachable", True,
                  lambda: agent(port).run(email_task(body="x"), context()))
    assert error.message == f"127.0.0.1:{port}: connect: connection refused"


def test_a_server_that_never_greets_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        began = time.monotonic()
        error = fails("smtp_timeout", True, lambda: agent(port, timeout=0.3).run(
            email_task(body="x"), context()))
    assert time.monotonic() - began < 2
    assert error.message == f"127.0.0.1:{port}: connect: no answer within 0.3 s"


def test_cancelling_stops_a_conversation_that_hangs() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        began = time.monotonic()
        fails("cancelled", False, lambda: agent(port, timeout=30).run(
            email_task(body="x"), context(cancel)))
    assert time.monotonic() - began < 2


def test_login_with_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_USER", "robot")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    options = {"username_env": "TEST_SMTP_USER", "password_env": "TEST_SMTP_PASSWORD"}
    with smtp_server(credentials=("robot", PASSWORD)) as (mailbox, port):
        result = agent(port, **options).run(email_task(body="x"), context())
    assert mailbox.logins == [("robot", PASSWORD)]
    assert result["recipients"] == ["ann@example.test", "bob@example.test"]
    assert PASSWORD not in repr(result)


def test_a_wrong_password_is_not_retried_and_never_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_USER", "robot")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    options = {"username_env": "TEST_SMTP_USER", "password_env": "TEST_SMTP_PASSWORD"}
    with smtp_server(credentials=("robot", "another")) as (mailbox, port):
        error = fails("smtp_auth_failed", False,
                      lambda: agent(port, **options).run(email_task(body="x"), context()))
    assert error.message.startswith(f"127.0.0.1:{port}: AUTH: 535 ")
    assert PASSWORD not in error.message
    assert mailbox.sent == []


def test_starttls_required_but_not_offered(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    error = fails("smtp_tls_failed", False, lambda: agent(port, starttls=True).run(
        email_task(body="x"), context()))
    assert error.message == (f"127.0.0.1:{port}: starttls is set but the server offers no"
                             " STARTTLS")
    assert mailbox.sent == []


def test_starttls_needs_a_trusted_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server(starttls=True) as (mailbox, port):
        error = fails("smtp_tls_failed", False, lambda: agent(port, starttls=True).run(
            email_task(body="x"), context()))
        assert error.message.startswith(
            f"127.0.0.1:{port}: STARTTLS: certificate not trusted (self")
        monkeypatch.setenv("SSL_CERT_FILE", str(CERTIFICATE))  # OpenSSL's own variable
        agent(port, starttls=True).run(email_task(body="x"), context())
    assert [sent.tls for sent in mailbox.sent] == [True]


@pytest.mark.parametrize(("inputs", "problem"), [
    ({"body": "x"}, "inputs.to must be a list of email addresses"),
    ({"to": [], "body": "x"}, "inputs.to must be a list of email addresses"),
    ({"to": ["not an address"], "body": "x"}, "inputs.to holds something that is not an"),
    ({"to": ["a@b.test\r\nRCPT TO:<c@d.test>"], "body": "x"}, "inputs.to holds something"),
    ({"to": ["jörg@b.test"], "body": "x"}, "inputs.to holds something"),  # no SMTPUTF8
    ({"to": ["a@b.test"], "subject": "two\nlines", "body": "x"},
     "inputs.subject must be a string on one line"),
    ({"to": ["a@b.test"]}, "no body: inputs.body is not set and no upstream result has a text"),
])
def test_inputs_that_cannot_make_an_email(smtp: tuple[Mailbox, int], inputs: dict[str, Any],
                                          problem: str) -> None:
    mailbox, port = smtp
    error = fails("smtp_bad_input", False,
                  lambda: agent(port).run(task("email", inputs=inputs), context()))
    assert error.message.startswith(problem)
    assert mailbox.sent == []


@pytest.mark.parametrize(("options", "key", "problem"), [
    ({"sender": "a@b.test"}, "host", "is required"),
    ({"host": "mail.test"}, "sender", "is required"),
    ({"host": "mail.test", "sender": "robot"}, "sender", "must be an email address"),
    ({"host": "mail.test", "sender": "a@b.test", "port": 70000}, "port", "must be at least 1"),
    ({"host": "mail.test", "sender": "a@b.test", "starttls": "yes"}, "starttls",
     "must be true or false"),
    ({"host": "mail.test", "sender": "a@b.test", "username_env": "HOME"}, "password_env",
     "username_env and password_env go together"),
    ({"host": "mail.test", "sender": "a@b.test", "password": "inline"}, "password",
     "unknown option"),
])
def test_options_are_checked_at_construction(options: dict[str, Any], key: str,
                                             problem: str) -> None:
    with pytest.raises(OptionError) as raised:
        SmtpAgent("email", options)
    assert raised.value.key == key
    assert raised.value.problem.startswith(problem), raised.value.problem
