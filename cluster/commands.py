"""Commands for an execution another process owns: handed to its owner, answered the same way.

Only an execution's owner writes it. A node asked to pause, resume, cancel or retry an
execution that another live node owns records the command in the `stratexec_commands` table
and NOTIFYs `stratexec_commands`; every node listens, and the owner takes the row (one
UPDATE decides who, so a command is carried out once), applies the command to its actor,
writes the answer (the new status and log position, or the domain error that refused it)
and NOTIFYs `stratexec_answers`. The sender waits for that answer, so the HTTP answer is the
owner's, exactly as if the sender owned the execution: 200 with the new status, 409 when the
state forbids it. Owners also look for commands every `SWEEP_INTERVAL` seconds, for a
NOTIFY that was missed or a command sent to a node that died before taking it; a command
that nobody answers within `ANSWER_TIMEOUT` is withdrawn and fails.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import psycopg

from stratexec.actors.messages import Transition
from stratexec.actors.runtime import OwnedElsewhere
from stratexec.domain.errors import DomainError, InvalidTransition, NotFound, UnknownTask

logger = logging.getLogger(__name__)
COMMANDS, ANSWERS = "stratexec_commands", "stratexec_answers"
ANSWER_TIMEOUT = 30.0
SWEEP_INTERVAL = 1.0
ROUNDS = 3  # the owner changed while the command was on its way, this often at most
OWNED_ELSEWHERE = "owned_elsewhere"
ERRORS: dict[str, type[DomainError]] = {
    error.code: error for error in (InvalidTransition, UnknownTask, NotFound)}
SCHEMA = f"""CREATE TABLE IF NOT EXISTS {COMMANDS} (
    id UUID PRIMARY KEY, execution_id UUID NOT NULL, command TEXT NOT NULL, task_id TEXT,
    sent_by TEXT NOT NULL, taken_by TEXT, answer JSONB,
    sent_at TIMESTAMPTZ NOT NULL DEFAULT now())"""

Execute = Callable[[UUID, str, str | None], Transition]  # (execution, command, task) -> answer


class CommandRouter:
    def __init__(self, conninfo: str, node: str, owned: Callable[[], set[UUID]],
                 execute: Execute) -> None:
        self.conninfo, self.node = conninfo, node
        self._owned, self._execute = owned, execute
        self._answered: dict[UUID, threading.Event] = {}
        self._answered_lock = threading.Lock()
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="stratexec-commands",
                                        daemon=True)
        with psycopg.connect(conninfo, autocommit=True) as connection, \
                connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (COMMANDS,))
            connection.execute(SCHEMA)

    def start(self) -> CommandRouter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(10)

    def on_notify(self, channel: str, payload: str) -> None:
        """The node's listener calls this for every notification (and after reconnecting)."""
        if channel == ANSWERS:
            with self._answered_lock:
                event = self._answered.get(UUID(payload)) if payload else None
            if event is not None:
                event.set()
        else:
            self._wake.set()

    # ---------------------------------------------------------------- sending

    def send(self, execution_id: UUID, command: str, task_id: str | None = None
             ) -> Transition:
        """Have the owner apply `command`; its answer, or the domain error it raised."""
        for _ in range(ROUNDS):
            answer = self._send_once(execution_id, command, task_id)
            error = answer.get("error")
            if error is None:
                return Transition(answer["status"], answer["position"])
            if error["code"] != OWNED_ELSEWHERE:
                raise ERRORS.get(error["code"], DomainError)(error["message"],
                                                             error["details"])
        raise OwnedElsewhere(f"execution {execution_id} changed hands {ROUNDS} times")

    def _send_once(self, execution_id: UUID, command: str, task_id: str | None
                   ) -> dict[str, Any]:
        command_id = uuid4()
        answered = threading.Event()
        with self._answered_lock:
            self._answered[command_id] = answered
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as connection:
                with connection.transaction():
                    connection.execute(
                        f"INSERT INTO {COMMANDS} (id, execution_id, command, task_id, sent_by)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        (command_id, execution_id, command, task_id, self.node))
                    connection.execute("SELECT pg_notify(%s, %s)", (COMMANDS, str(command_id)))
                answer = self._wait_for_answer(connection, command_id, answered)
        finally:
            with self._answered_lock:
                self._answered.pop(command_id, None)
        return answer

    def _wait_for_answer(self, connection: psycopg.Connection[Any], command_id: UUID,
                         answered: threading.Event) -> dict[str, Any]:
        waited = 0.0
        while waited < ANSWER_TIMEOUT:
            row = connection.execute(f"SELECT answer FROM {COMMANDS} WHERE id = %s",
                                     (command_id,)).fetchone()
            if row is not None and row[0] is not None:
                connection.execute(f"DELETE FROM {COMMANDS} WHERE id = %s", (command_id,))
                answer: dict[str, Any] = row[0]
                return answer
            answered.wait(SWEEP_INTERVAL)  # set by the answer's NOTIFY
            waited += SWEEP_INTERVAL
        deleted = connection.execute(f"DELETE FROM {COMMANDS} WHERE id = %s AND taken_by IS"
                                     " NULL", (command_id,)).rowcount
        if deleted:
            return {"error": {"code": OWNED_ELSEWHERE, "message": "", "details": {}}}
        raise TimeoutError(f"the owner of the execution did not answer within "
                           f"{ANSWER_TIMEOUT:.0f} s")

    # --------------------------------------------------------------- handling

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(SWEEP_INTERVAL)
            self._wake.clear()
            try:
                self._handle_pending()
            except psycopg.OperationalError as error:
                logger.warning("handling commands for owned executions failed (%s)", error)

    def _handle_pending(self) -> None:
        owned = list(self._owned())
        if not owned:
            return
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            taken = connection.execute(
                f"UPDATE {COMMANDS} SET taken_by = %s WHERE taken_by IS NULL AND"
                " execution_id = ANY(%s) RETURNING id, execution_id, command, task_id",
                (self.node, owned)).fetchall()
            for command_id, execution_id, command, task_id in taken:
                answer = self._answer(execution_id, command, task_id)
                connection.execute(f"UPDATE {COMMANDS} SET answer = %s WHERE id = %s",
                                   (json.dumps(answer), command_id))
                connection.execute("SELECT pg_notify(%s, %s)", (ANSWERS, str(command_id)))

    def _answer(self, execution_id: UUID, command: str, task_id: str | None
                ) -> dict[str, Any]:
        try:
            transition = self._execute(execution_id, command, task_id)
        except OwnedElsewhere as error:
            return {"error": {"code": OWNED_ELSEWHERE, "message": str(error), "details": {}}}
        except DomainError as error:
            return {"error": {"code": error.code, "message": error.message,
                              "details": error.details}}
        return {"status": transition.status, "position": transition.position}
