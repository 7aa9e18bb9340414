"""What the built-in handlers share on the network: naming an endpoint without its
credentials, keeping secrets out of what they say, a deadline and cancellation for each
call, and one JSON POST over HTTP with its failures sorted into kinds.

Failure kinds of an HTTP call, with the handler's prefix (`webhook_`, `llm_`):

| kind | when | retried |
|---|---|---|
| `_unreachable` | no connection, or it broke before an answer (refused, DNS, reset) | yes |
| `_timeout` | no complete answer within the `timeout` option | yes |
| `_tls_failed` | the server's certificate did not verify | no |
| `_rate_limited` | 429 | yes, after its Retry-After (see below) |
| `_http_5xx` | 500-599 | yes, after its Retry-After if it sent one |
| `_http_4xx` | 400-499 but 429 | no |
| `_http_3xx` | a redirect (never followed: a POST must not turn into a GET) | no |
| `_bad_response` | an answer that is not what the handler reads (the handler says) | yes |
| `cancelled` | the attempt was cancelled while it waited | no |

Retry-After: the engine has no per-attempt retry delay, so a handler waits inside the
attempt (waking early if it is cancelled) when the server asks for at most `retry_after_max`
seconds, and then fails; the retry policy's own backoff comes on top, so the next attempt
never comes sooner than the server asked. A longer Retry-After is not waited for: the attempt
fails at once and the message says what the server asked. The wait holds one of the agent
type's workers, which also slows the other attempts of that type: what a rate limit wants.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import SplitResult, urlsplit

from stratexec.actors.agents.base import AgentError, OptionError, TaskContext

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1 << 20  # more is a bad response, not a result
WATCH_INTERVAL = 0.05  # seconds between two looks at cancellation and the deadline
MASK = "***"
USER_AGENT = "stratexec"


def cancelled() -> AgentError:
    return AgentError("cancelled", "attempt cancelled", retryable=False)


# ------------------------------------------------------------------ endpoints

def http_url(key: str, value: str) -> SplitResult:
    """An option's http(s) URL, checked; credentials belong in an environment variable."""
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise OptionError(key, "must be an http:// or https:// URL with a host")
    if url.username is not None or url.password is not None:
        raise OptionError(key, "must not carry credentials (user:password@): the handler's"
                               " *_env options name the variables that hold secrets")
    try:
        url.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise OptionError(key, "has a port that is not a number") from None
    return url


def endpoint(url: SplitResult) -> str:
    """The URL as messages name it: scheme, host, port and path (no query, no fragment)."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{host}:{port}{url.path or '/'}"


class Redactor:
    """Replaces each secret by `***` in what a handler says (error messages) and returns
    (results echoed by a server): a secret never reaches an event, a log or a view."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def error(self, error: AgentError) -> AgentError:
        return AgentError(error.kind, self.text(error.message), error.retryable)

    @contextmanager
    def guard(self, agent_type: str, idempotency_key: str) -> Iterator[None]:
        """Around an attempt: its failure leaves with secrets masked, and an unexpected
        exception becomes the engine's kind `exception` (retried), logged here with its
        traceback masked (the engine would log it as it is)."""
        try:
            yield
        except AgentError as error:
            raise self.error(error) from None
        except Exception as error:
            logger.info("%s attempt %s raised:\n%s", agent_type, idempotency_key,
                        self.text("".join(traceback.format_exception(error)).rstrip()))
            raise AgentError("exception", self.text(f"{type(error).__name__}: {error}")
                             ) from None


# ------------------------------------------------------------------ deadline and cancellation

class Watch:
    """While a network call runs: when the attempt is cancelled or the call's deadline
    passes, `interrupt` is called from a watcher thread (it shuts the socket down, which
    wakes the blocked call), and `reason` says why ("cancelled" or "deadline")."""

    def __init__(self, context: TaskContext, seconds: float, interrupt: Callable[[], None]
                 ) -> None:
        self.context = context
        self.deadline = time.monotonic() + seconds
        self.interrupt = interrupt
        self.reason: str | None = None
        self._done = threading.Event()

    def timed_out(self, error: BaseException) -> bool:
        """Whether `error` came from the deadline: ours, or the socket's own timeout (which
        some libraries turn into another error: smtplib into SMTPServerDisconnected)."""
        return (self.reason == "deadline" or time.monotonic() >= self.deadline
                or isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError))

    def __enter__(self) -> Watch:
        if self.context.cancelled:
            raise cancelled()
        threading.Thread(target=self._watch, name="agent-call-watch", daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self.context.cancel_event.wait(WATCH_INTERVAL):
                self.reason = "cancelled"
            elif time.monotonic() >= self.deadline:
                self.reason = "deadline"
            else:
                continue
            if not self._done.is_set():
                self.interrupt()
            return


def shut_down(sock: socket.socket | None) -> None:
    """Wake a thread blocked on `sock` (closing it from another thread would not)."""
    if sock is not None:
        with contextlib.suppress(OSError):  # not connected yet, or closed already
            sock.shutdown(socket.SHUT_RDWR)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds, or an HTTP date: rounded up to
    whole seconds), None if none or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return float(max(0, math.ceil((when - (now or datetime.now(UTC))).total_seconds())))


# ------------------------------------------------------------------ HTTP

@dataclass(frozen=True)
class HttpAnswer:
    status: int
    reason: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class HttpCall:
    """One handler's HTTP endpoint, and how long a call may take."""

    url: SplitResult
    prefix: str  # of the failure kinds: "webhook", "llm"
    timeout: float
    retry_after_max: float

    @property
    def where(self) -> str:
        return endpoint(self.url)

    def post_json(self, body: bytes, headers: Mapping[str, str], context: TaskContext
                  ) -> HttpAnswer:
        """POST `body`; a 2xx answer is returned, anything else raises `AgentError` (whose
        message may hold what the server said: run it in `Redactor.guard`)."""
        answer = self._post(body, headers, context)
        self._check_status(answer, context)
        return answer

    def _post(self, body: bytes, headers: Mapping[str, str], context: TaskContext
              ) -> HttpAnswer:
        url, where, prefix = self.url, self.where, self.prefix
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(
                url.hostname or "", url.port, timeout=self.timeout,
                context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(url.hostname or "", url.port,
                                                    timeout=self.timeout)
        path = url.path or "/"
        if url.query:
            path = f"{path}?{url.query}"
        watch = Watch(context, self.timeout, lambda: shut_down(connection.sock))
        try:
            with watch:
                connection.request("POST", path, body=body, headers={
                    "Content-Type": "application/json", "Accept": "application/json",
                    "User-Agent": USER_AGENT, **headers})
                response = connection.getresponse()
                data = response.read(MAX_RESPONSE_BYTES + 1)
        except ssl.SSLCertVerificationError as error:
            raise AgentError(f"{prefix}_tls_failed",
                             f"{where}: certificate not trusted ({error.verify_message})",
                             retryable=False) from None
        except (OSError, http.client.HTTPException) as error:
            if watch.reason == "cancelled":
                raise cancelled() from None
            if watch.timed_out(error):
                raise AgentError(f"{prefix}_timeout",
                                 f"{where}: no answer within {self.timeout:g} s") from None
            raise AgentError(f"{prefix}_unreachable", f"{where}: {describe(error)}") from None
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise AgentError(f"{prefix}_bad_response",
                             f"{where}: answered more than {MAX_RESPONSE_BYTES} bytes")
        return HttpAnswer(response.status, response.reason, response.headers, data)

    def _check_status(self, answer: HttpAnswer, context: TaskContext) -> None:
        status, prefix, where = answer.status, self.prefix, self.where
        if 200 <= status < 300:
            return
        said = f"{where} answered {status} {answer.reason}".rstrip() + excerpt(answer.body)
        if status == 429 or 500 <= status < 600:
            kind = f"{prefix}_rate_limited" if status == 429 else f"{prefix}_http_5xx"
            raise AgentError(kind, self._wait(answer, said, context), retryable=True)
        if 400 <= status < 500:
            raise AgentError(f"{prefix}_http_4xx", said, retryable=False)
        if 300 <= status < 400:
            location = urlsplit(answer.headers.get("Location") or "")
            target = endpoint(location) if location.hostname else location.path
            moved = f" (to {target})" if target else ""
            raise AgentError(f"{prefix}_http_3xx",
                             f"{said}{moved}; redirects are not followed", retryable=False)
        raise AgentError(f"{prefix}_bad_response", said)

    def _wait(self, answer: HttpAnswer, said: str, context: TaskContext) -> str:
        """Wait out a short Retry-After inside the attempt; the failure's message."""
        header = answer.headers.get("Retry-After")
        seconds = retry_after(header)
        if seconds is None:
            return said
        if seconds > self.retry_after_max:
            return (f"{said}; Retry-After {seconds:g} s is more than retry_after_max"
                    f" ({self.retry_after_max:g} s): not waited for")
        if seconds > 0:
            context.report_progress(
                0.0, f"waiting {seconds:g} s: {self.where} asked so (Retry-After)")
            if context.wait_cancelled(seconds):
                raise cancelled()
        return f"{said}; waited {seconds:g} s as its Retry-After asked"


def excerpt(body: bytes, limit: int = 200) -> str:
    """The start of an error answer's body, on one line, for the message."""
    text = " ".join(body[:limit * 4].decode("utf-8", "replace").split())
    if not text:
        return ""
    return f": {text[:limit]}{'...' if len(text) > limit else ''}"


def describe(error: BaseException) -> str:
    """A network error in a few words (its text names no secret: we never put one in a
    host name or a path)."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"host not found ({error.strerror})"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def json_bytes(value: Any) -> bytes:
    """The JSON that goes on the wire (UTF-8; a value JSON has no type for becomes text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")
