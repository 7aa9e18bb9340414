"""The `smtp` handler: sends one email per attempt through an SMTP server (smtplib).

The attempt's item says what to send: `inputs.to` (a list of addresses, or one),
`inputs.subject` (else the task's title) and `inputs.body` (else the `text` of the first
upstream result that has one: how a content task's draft becomes an email). Options: `host`
and `sender` (required), `port` (25), `starttls` (false), `username_env` and `password_env`
(together, or neither), `timeout` (30 s for the whole conversation), `helo_name`.

The `Message-ID` is `<first 32 hex digits of sha256(idempotency key)@stratexec>`: the same
for every delivery of one attempt, so a receiver can recognise a re-delivery; the key itself
is in `X-Stratexec-Idempotency-Key`. The result names the accepted `recipients`, the
`messageId`, the server's `reply` to the message, and the `refused` recipients (address ->
reply) when the server accepted the message for some recipients only: it went to those, so it
is not sent again to them.

Failure kinds: `smtp_unreachable` (refused or broken connection) and `smtp_timeout` are
retried, as is `smtp_transient` (a 4xx reply); `smtp_permanent` (a 5xx reply, or every
recipient refused for good), `smtp_auth_failed`, `smtp_tls_failed` and `smtp_bad_input` (the
item's inputs cannot make an email) are not; `cancelled` when the attempt was cancelled.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import Any

from stratexec.actors.agents.base import AgentError, OptionError, TaskContext
from stratexec.actors.agents.net import Redactor, Watch, cancelled, describe, shut_down
from stratexec.actors.agents.options import Options
from stratexec.actors.messages import AgentTask

MESSAGE_ID_DOMAIN = "stratexec"
# Headers fold at 998 characters, RFC 5322's limit, not at 78: a long idempotency key has no
# space to fold at, and folding it right after the colon gives it a leading space on arrival.
POLICY = SMTP_POLICY.clone(max_line_length=998)
IDEMPOTENCY_HEADER = "X-Stratexec-Idempotency-Key"


def message_id(idempotency_key: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def _address(text: str) -> str | None:
    """The address of `text` ("Name <a@b>" or "a@b"), or None if it is not one (addresses
    are ASCII: SMTPUTF8 is not used)."""
    if "\r" in text or "\n" in text:
        return None
    _, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    usable = at and local and domain and " " not in address and address.isascii()
    return address if usable else None


class SmtpAgent:
    def __init__(self, agent_type: str, options: Mapping[str, Any] | None = None) -> None:
        read = Options(options)
        self.host = read.required_text("host")
        self.port = read.integer("port", 25, minimum=1, maximum=65535) or 25
        self.sender = read.required_text("sender")
        envelope_from = _address(self.sender)
        if envelope_from is None:
            raise OptionError("sender", "must be an email address, as a@b or Name <a@b>")
        self.envelope_from = envelope_from
        self.starttls = read.boolean("starttls", False)
        self._username = read.environment("username_env")
        self._password = read.environment("password_env")
        if (self._username is None) != (self._password is None):
            raise OptionError("password_env" if self._password is None else "username_env",
                              "username_env and password_env go together")
        self.timeout = read.seconds("timeout", 30.0)
        self.helo_name = read.text("helo_name", socket.gethostname() or "localhost") or ""
        read.done()
        self.agent_type = agent_type
        self.where = f"{self.host}:{self.port}"
        self.redactor = Redactor([self._password])

    def __repr__(self) -> str:
        return f"SmtpAgent({self.agent_type!r}, {self.where!r})"

    def message(self, task: AgentTask) -> tuple[EmailMessage, list[str]]:
        """The email an attempt sends, and its recipients' addresses."""
        inputs = task.inputs
        recipients = _recipients(inputs.get("to"))
        subject = inputs.get("subject", task.title)
        if not isinstance(subject, str) or "\n" in subject or "\r" in subject:
            raise _bad_input("inputs.subject must be a string on one line")
        body = inputs.get("body")
        if body is None:
            body = next((result["text"] for result in task.upstream.values()
                         if isinstance(result, dict) and isinstance(result.get("text"), str)),
                        None)
        if not isinstance(body, str):
            raise _bad_input("no body: inputs.body is not set and no upstream result has a"
                             " text")
        message = EmailMessage(policy=POLICY)
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id(task.idempotency_key)
        message[IDEMPOTENCY_HEADER] = task.idempotency_key
        message.set_content(body, cte=None if body.isascii() else "quoted-printable")
        return message, recipients

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        with self.redactor.guard(self.agent_type, task.idempotency_key):
            message, recipients = self.message(task)
            return self._send(message, recipients, context)

    def _send(self, message: EmailMessage, recipients: list[str], context: TaskContext
              ) -> dict[str, Any]:
        smtp = _Client(timeout=self.timeout, local_hostname=self.helo_name)
        watch = Watch(context, self.timeout, lambda: shut_down(smtp.sock))
        steps: list[str] = ["connect"]  # the conversation's last step, for messages
        try:
            with watch:
                result = self._converse(smtp, message, recipients, context, steps)
        except AgentError:
            raise
        except (OSError, smtplib.SMTPException) as error:
            raise self._failure(error, steps[-1], watch) from None
        finally:
            smtp.close()
        redacted: dict[str, Any] = self.redactor.value(result)
        return redacted

    def _converse(self, smtp: smtplib.SMTP, message: EmailMessage, recipients: list[str],
                  context: TaskContext, steps: list[str]) -> dict[str, Any]:
        smtp.connect(self.host, self.port)
        steps.append("EHLO")
        smtp.ehlo_or_helo_if_needed()
        if self.starttls:
            steps.append("STARTTLS")
            if not smtp.has_extn("starttls"):
                raise AgentError("smtp_tls_failed", f"{self.where}: starttls is set but the"
                                 " server offers no STARTTLS", retryable=False)
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self._username is not None and self._password is not None:
            steps.append("AUTH")
            smtp.login(self._username, self._password)
        steps.append("MAIL FROM")
        _expect(smtp.mail(self.envelope_from), 250)
        steps.append("RCPT TO")
        accepted, refused = _envelope(smtp, recipients)
        if not accepted:
            raise _all_refused(self.where, refused)
        if context.cancelled:  # the last moment: after DATA the email is sent
            raise cancelled()
        steps.append("DATA")
        code, reply = _expect(smtp.data(message.as_bytes()), 250)
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()  # the server has the message: its goodbye does not matter
        result: dict[str, Any] = {
            "recipients": accepted, "messageId": message["Message-ID"],
            "reply": f"{code} {reply}"}
        if refused:
            result["refused"] = refused
        return result

    def _failure(self, error: OSError | smtplib.SMTPException, step: str, watch: Watch
                 ) -> AgentError:
        where = f"{self.where}: {step}"
        if isinstance(error, smtplib.SMTPResponseException):
            return _reply_error(where, step, error.smtp_code, error.smtp_error)
        if isinstance(error, ssl.SSLCertVerificationError):
            return AgentError("smtp_tls_failed", f"{where}: certificate not trusted"
                              f" ({error.verify_message})", retryable=False)
        if isinstance(error, ssl.SSLError):
            return AgentError("smtp_tls_failed", f"{where}: TLS failed"
                              f" ({error.reason or type(error).__name__})", retryable=False)
        if watch.reason == "cancelled":
            return cancelled()
        if watch.timed_out(error):
            return AgentError("smtp_timeout", f"{where}: no answer within {self.timeout:g} s")
        if isinstance(error, OSError | smtplib.SMTPServerDisconnected):
            return AgentError("smtp_unreachable", f"{where}: {_describe(error)}")
        kind = "smtp_auth_failed" if step == "AUTH" else "smtp_permanent"
        return AgentError(kind, f"{where}: {error}", retryable=False)


class _Client(smtplib.SMTP):
    """smtplib's client, checking STARTTLS's certificate against the host it connects to:
    smtplib only remembers a host given to its constructor (which connects at once, before
    the attempt's watch could interrupt it) and would otherwise check none."""

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None
                ) -> tuple[int, bytes]:
        self._host = host
        return super().connect(host, port, source_address)


def _expect(answer: tuple[int, bytes], code: int) -> tuple[int, str]:
    got, reply = answer
    if got != code:
        raise smtplib.SMTPResponseException(got, reply)
    return got, _text(reply)


def _envelope(smtp: smtplib.SMTP, recipients: list[str]
              ) -> tuple[list[str], dict[str, str]]:
    accepted, refused = [], {}
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code in (250, 251):
            accepted.append(recipient)
        else:
            refused[recipient] = f"{code} {_text(reply)}"
    if not accepted:
        smtp.rset()
    return accepted, refused


def _all_refused(where: str, refused: dict[str, str]) -> AgentError:
    listed = "; ".join(f"{address} {reply}" for address, reply in refused.items())
    transient = any(reply.startswith("4") for reply in refused.values())
    return AgentError("smtp_transient" if transient else "smtp_permanent",
                      f"{where}: RCPT TO: every recipient refused: {listed}",
                      retryable=transient)


def _reply_error(where: str, step: str, code: int, reply: bytes | str) -> AgentError:
    said = f"{where}: {code} {_text(reply)}".rstrip()
    if 400 <= code < 500:
        return AgentError("smtp_transient", said, retryable=True)
    if step == "AUTH":
        return AgentError("smtp_auth_failed", said, retryable=False)
    return AgentError("smtp_permanent", said, retryable=False)


def _recipients(to: Any) -> list[str]:
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to:
        raise _bad_input("inputs.to must be a list of email addresses")
    addresses = []
    for entry in to:
        address = _address(entry) if isinstance(entry, str) else None
        if address is None:
            raise _bad_input(f"inputs.to holds something that is not an email address: {entry!r}"
                             [:200])
        addresses.append(address)
    return addresses


def _bad_input(problem: str) -> AgentError:
    return AgentError("smtp_bad_input", problem, retryable=False)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    return describe(error)
