"""Row-level security of the read models on PostgreSQL: two roles and the policies by workspace.

The projection runner writes, and every process-internal read (the runner's positions, the
CLI, `replay --verify`) reads, as the writer role, whose policy lets it see and write every
row. The HTTP layer reads as the reader role with the token's workspaces set for the
transaction (`set_config('stratexec.workspaces', ..., true)`), and sees only:

- in a table with a `workspace_id` column, the rows of those workspaces (and the rows for
  every workspace, whose workspace is '': the agent types' circuit breaker in the feed);
- in a table with an `execution_id` column and no workspace, the rows of the executions it
  sees (the policy reads the executions table, itself under the reader's policy).

Every such table has RLS enabled and forced, so even the tables' owner obeys the policies
(a superuser never does, hence the roles). The workspaces travel as a JSON array, so a
workspace id may hold any character; an unset or empty setting matches nothing.

Roles are cluster-wide and not transactional with the rest: `ensure_roles` creates each one
that is missing when the connected user may (superuser or CREATEROLE), tolerates another
process creating it at the same moment, and grants it to the connected user so that the
store can `SET ROLE` to it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from psycopg import sql

from stratexec.projections.sql import Cursor

SETTING = "stratexec.workspaces"
READER_POLICY, WRITER_POLICY = "stratexec_reader_scope", "stratexec_writer_all"

# The workspaces the current request's reads are limited to; None: unlimited (in-process).
_READ_SCOPE: ContextVar[frozenset[str] | None] = ContextVar("stratexec_read_scope",
                                                            default=None)


@dataclass(frozen=True)
class Roles:
    reader: str = "stratexec_reader"
    writer: str = "stratexec_writer"


class RolesMissing(RuntimeError):
    """A role the read models need does not exist, and the connected user cannot create it."""


@contextmanager
def reading_for(workspaces: Collection[str]) -> Iterator[None]:
    """Every view read in this context (and in the threads `asyncio.to_thread` starts from
    it) goes through the reader role, limited to `workspaces`."""
    token = _READ_SCOPE.set(frozenset(workspaces))
    try:
        yield
    finally:
        _READ_SCOPE.reset(token)


def read_scope() -> frozenset[str] | None:
    return _READ_SCOPE.get()


def scope_setting(workspaces: Collection[str]) -> str:
    return json.dumps(sorted(workspaces))


_CREATE_ROLE = """DO $$ BEGIN
    CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another process made it
END $$"""


def ensure_roles(cur: Cursor, roles: Roles) -> None:
    """Create the missing roles (if allowed) and make sure the connected user can use them."""
    (may_create,) = cur.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles"
                                " WHERE rolname = current_user").fetchone()
    for name in (roles.reader, roles.writer):
        (exists,) = cur.execute("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?)",
                                (name,)).fetchone()
        if not exists:
            if not may_create:
                raise RolesMissing(
                    f"the role {name} does not exist and the connected user may not create it:"
                    " create the roles as README's 'PostgreSQL roles' says")
            cur.execute(_text(sql.SQL(_CREATE_ROLE).format(role=sql.Identifier(name))))
        (member,) = cur.execute("SELECT pg_has_role(current_user, ?, 'USAGE')",
                                (name,)).fetchone()
        if not member:
            cur.execute(_text(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(name))))


def secure_tables(cur: Cursor, schema: str, roles: Roles) -> None:
    """Grants on the schema's tables, and RLS with the two policies on those that hold
    workspace data (see the module's docstring). Idempotent."""
    reader, writer = sql.Identifier(roles.reader), sql.Identifier(roles.writer)
    name = sql.Identifier(schema)
    for statement in (
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(name, reader, writer),
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(name, reader),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}"
                    ).format(name, writer)):
        cur.execute(_text(statement))
    columns: dict[str, set[str]] = {}
    for table, column in cur.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND column_name IN ('workspace_id', 'execution_id')",
            (schema,)).fetchall():
        columns.setdefault(table, set()).add(column)
    existing = {(table, policy) for table, policy in cur.execute(
        "SELECT tablename, policyname FROM pg_policies WHERE schemaname = ?", (schema,))}
    for table, held in sorted(columns.items()):
        scope = _WORKSPACE_SCOPE if "workspace_id" in held else _EXECUTION_SCOPE
        target = sql.Identifier(schema, table)
        cur.execute(_text(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(target)))
        cur.execute(_text(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(target)))
        if (table, READER_POLICY) not in existing:
            cur.execute(_text(sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING ({})"
                                      ).format(sql.Identifier(READER_POLICY), target, reader,
                                               sql.SQL(scope))))
        if (table, WRITER_POLICY) not in existing:
            cur.execute(_text(sql.SQL(
                "CREATE POLICY {} ON {} FOR ALL TO {} USING (true) WITH CHECK (true)").format(
                    sql.Identifier(WRITER_POLICY), target, writer)))


_SCOPE = (f"ARRAY(SELECT jsonb_array_elements_text("
          f"NULLIF(current_setting('{SETTING}', true), '')::jsonb))")
_WORKSPACE_SCOPE = f"workspace_id = '' OR workspace_id = ANY ({_SCOPE})"
_EXECUTION_SCOPE = "EXISTS (SELECT 1 FROM executions e WHERE e.id = execution_id)"


def _text(statement: sql.Composable) -> str:
    """A composed statement as text, for the store's cursors (which take SQLite's `?`
    parameters, so a statement without parameters must hold no `?`)."""
    text = statement.as_string(None)
    assert "?" not in text
    return text
