"""Access tokens: who may act in which workspaces.

A token is a random secret shown once; only its SHA-256 hash is recorded. The aggregate's id
is derived from that hash, so checking a bearer token is one lookup by id. Tokens are
events like everything else: `Issued`, then perhaps `Revoked`.
"""

from __future__ import annotations

import hashlib
import secrets
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from stratexec.domain.errors import InvalidTransition

TOKEN_PREFIX = "sx_"


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_id(secret: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"stratexec:token:{hash_secret(secret)}")


class AccessToken(Aggregate):
    TOPIC = "stratexec:AccessToken"

    class Created(Aggregate.Created):
        TOPIC = "stratexec:AccessToken.Created"

    @staticmethod
    def create_id(secret_hash: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"stratexec:token:{secret_hash}")

    @event("Issued", topic="stratexec:AccessToken.Issued")
    def __init__(self, secret_hash: str, user: str, workspaces: list[str], label: str) -> None:
        self.secret_hash = secret_hash
        self.user = user
        self.workspaces = workspaces
        self.label = label
        self.revoked = False

    @classmethod
    def issue(cls, user: str, workspaces: list[str], label: str = "") -> tuple[AccessToken, str]:
        """A new token and its secret; the secret is not kept anywhere."""
        if not user.strip():
            raise ValueError("a token belongs to a user")
        if not workspaces or not all(w.strip() for w in workspaces):
            raise ValueError("a token grants at least one workspace")
        secret = new_secret()
        token = cls(secret_hash=hash_secret(secret), user=user.strip(),
                    workspaces=sorted({w.strip() for w in workspaces}), label=label)
        return token, secret

    def grants(self, workspace_id: str) -> bool:
        return not self.revoked and workspace_id in self.workspaces

    def revoke(self) -> None:
        if self.revoked:
            raise InvalidTransition(f"token {self.id} is already revoked")
        self._revoked()

    @event("Revoked", topic="stratexec:AccessToken.Revoked")
    def _revoked(self) -> None:
        self.revoked = True
