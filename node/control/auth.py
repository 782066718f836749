"""Bearer tokens: nodes push and pull, operators read and write, viewers only read.

Only sha256 digests of tokens are kept (tokens are random, so a plain hash is enough); a
presented token is hashed and compared with `hmac.compare_digest`, so the time taken does not
tell how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from node.control.storage.base import ROLES, Storage

MAX_TOKEN = 256


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return "pal_" + secrets.token_urlsafe(32)


async def create_token(storage: Storage, name: str, role: str) -> str:
    """Make a token for `role`, store only its hash, return the token (shown once)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = new_token()
    await storage.put_token(hash_token(token), name, role, time.time())
    return token


class Authenticator:
    """Tokens from the configuration (by hash) plus tokens created in storage."""

    def __init__(self, storage: Storage | None, configured: dict[str, Principal]) -> None:
        # configured: token hash → principal
        self._storage = storage
        self._known: dict[str, Principal] = dict(configured)

    @classmethod
    def from_tokens(cls, storage: Storage | None,
                    tokens: list[tuple[str, str, str]]) -> Authenticator:
        """tokens: (token or 'sha256:<hex>', name, role) triples."""
        configured = {}
        for token, name, role in tokens:
            if role not in ROLES:
                raise ValueError(f"token {name!r}: role must be one of {', '.join(ROLES)}")
            digest = token[7:] if token.startswith("sha256:") else hash_token(token)
            configured[digest.lower()] = Principal(name, role)
        return cls(storage, configured)

    def replace_configured(self, tokens: list[tuple[str, str, str]]) -> set[Principal]:
        """Swap in the configuration's tokens (a reload); returns the principals that were
        configured before and are not now (their console sessions must end)."""
        new = Authenticator.from_tokens(None, tokens)._known
        gone = set(self._known.values()) - set(new.values())
        self._known = new
        return gone

    async def authenticate(self, header: str | None) -> Principal | None:
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
            return None
        digest = hash_token(token)
        found = None
        # Walk every configured digest so the loop's length does not depend on the guess.
        for known, principal in self._known.items():
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None and self._storage is not None:
            row = await self._storage.find_token(digest)
            if row is not None and hmac.compare_digest(row["token_hash"], digest):
                found = Principal(row["name"], row["role"])
        return found
