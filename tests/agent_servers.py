"""Real local servers for the built-in agent handlers' tests, each on 127.0.0.1, started and
stopped by the test: an HTTP server that records every request and answers as the test
scripts it (the webhook's receiver), an OpenAI-compatible /v1/chat/completions built on it,
and an aiosmtpd SMTP server that keeps what it was sent."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from stratexec.actors.agents.base import TaskContext
from stratexec.actors.messages import AgentTask

EXECUTION = UUID("6a0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3")
FIXTURES = Path(__file__).resolve().parent / "agents" / "fixtures"
# Self-signed for 127.0.0.1 and localhost, valid until 2126 (openssl req -x509 -days 36500).
CERTIFICATE = FIXTURES / "localhost-cert.pem"


def free_port() -> int:
    """A port nothing listens on now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def task(agent: str = "content", attempt: int = 1, **fields: Any) -> AgentTask:
    values: dict[str, Any] = {
        "execution_id": EXECUTION, "workspace_id": "demo", "task_id": f"l4-item:{agent}",
        "item_id": "l4-item", "title": "Write the launch note", "agent": agent,
        "priority": "high", "order": 0, "attempt": attempt} | fields
    return AgentTask(**values)


class Progress:
    """A TaskContext's progress reports, kept."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.reports.append((fraction, message))


def context(cancel: threading.Event | None = None) -> TaskContext:
    return TaskContext(Progress(), cancel)


# ------------------------------------------------------------------------- HTTP

@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


Responder = Callable[[Request], Reply]


class HttpServer:
    """Answers every request with `respond(request)`; `requests` are those it received."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # delayed answers give up
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request("POST", self.path,
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length))
                server.requests.append(request)
                reply = server.respond(request)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                body = reply.body
                if isinstance(body, dict | list):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        return Handler


@contextmanager
def http_server(respond: Responder) -> Iterator[HttpServer]:
    server = HttpServer(respond).start()
    try:
        yield server
    finally:
        server.stop()


def verified(secret: str, request: Request) -> bool:
    """What a receiver does with the signature header: HMAC the raw body, compare."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("x-stratexec-signature", ""))


# ------------------------------------------------------------- OpenAI-compatible

def completion(text: str, model: str = "tiny-1", prompt_tokens: int = 42,
               completion_tokens: int = 7) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class ChatModel:
    """A tiny OpenAI-compatible model: the answer is "Draft: " and the task's first prompt
    line; it counts words as tokens, and wants `Authorization: Bearer <api_key>`."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key

    def __call__(self, request: Request) -> Reply:
        if request.path != "/v1/chat/completions":
            return Reply(404, {"error": {"message": f"no route {request.path}"}})
        given = request.headers.get("authorization")
        if self.api_key is not None and given != f"Bearer {self.api_key}":
            # As some servers do: the key it got is in the error (the handler masks it).
            return Reply(401, {"error": {"message": f"Incorrect API key provided: {given}"}})
        body = request.json()
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        text = "Draft: " + user.splitlines()[0].removeprefix("Task: ")
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        return Reply(200, completion(text, body["model"], prompt_tokens, len(text.split())),
                     {"Content-Type": "application/json"})


# ------------------------------------------------------------------------- SMTP

@dataclass(frozen=True)
class Sent:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool = False  # sent over STARTTLS

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def body(self) -> str:
        content = self.message.get_content()
        assert isinstance(content, str)
        return content.replace("\r\n", "\n")


class Mailbox:
    """aiosmtpd's handler: `bounce@` recipients get 550, `later@` ones 450; `data_reply`
    replaces the answer to DATA; accepted messages are kept in `sent`."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.data_reply: str | None = None
        self.logins: list[tuple[str, str]] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("bounce@"):
            return "550 5.1.1 No such user"
        if address.startswith("later@"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.content
        assert isinstance(content, bytes)
        self.sent.append(Sent(str(envelope.mail_from), list(envelope.rcpt_tos), content,
                              session.ssl is not None))
        return "250 2.0.0 Message accepted for delivery"


class Authenticator:
    def __init__(self, mailbox: Mailbox, username: str, password: str) -> None:
        self.mailbox, self.username, self.password = mailbox, username, password

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.mailbox.logins.append((login, password))
        return AuthResult(success=(login, password) == (self.username, self.password),
                          handled=False)


@contextmanager
def smtp_server(credentials: tuple[str, str] | None = None, starttls: bool = False
                ) -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd in this process on a free port; AUTH (without TLS) with `credentials`;
    STARTTLS with a self-signed certificate for 127.0.0.1 (`CERTIFICATE`)."""
    mailbox = Mailbox()
    extra: dict[str, Any] = {}
    if credentials is not None:
        extra = {"authenticator": Authenticator(mailbox, *credentials),
                 "auth_require_tls": False}
    if starttls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(CERTIFICATE, FIXTURES / "localhost-key.pem")
        extra["tls_context"] = tls
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port,
                            server_hostname="mail.test", ready_timeout=10, **extra)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
