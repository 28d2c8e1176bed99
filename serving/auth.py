"""API keys, one per client (a camera or a person), stored only as SHA-256 hashes.

A key is 256 random bits, so a plain SHA-256 is enough to store it (no password stretching
needed). The service checks keys against an in-memory copy of the active hashes, refreshed from
the database every `refresh_seconds`: `lineinspect keys create/revoke` take effect in a running
service within that time, and no request waits on the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets

from sqlalchemy.exc import SQLAlchemyError

from annotation.errors import LineInspectError
from serving.records.database import Database

log = logging.getLogger("lineinspect.auth")
KEY_PREFIX = "li_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(db: Database, name: str) -> str:
    """A new key for `name`; only its hash is stored, so the caller must hand the key over now."""
    if not _NAME.fullmatch(name):
        raise LineInspectError(f"key name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    db.add_key(name, hash_key(key), key[: len(KEY_PREFIX) + 4])
    return key


class KeyRing:
    """The active keys of a running service: hash -> client name."""

    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self.db, self.refresh_seconds = db, refresh_seconds
        self._hashes: dict[str, str] = {}
        self._task: asyncio.Task | None = None

    @property
    def count(self) -> int:
        return len(self._hashes)

    def identify(self, key: str) -> str | None:
        """The client a key belongs to, or None; compares every stored hash in constant time."""
        digest = hash_key(key)
        found = None
        for stored, name in self._hashes.items():
            if hmac.compare_digest(stored, digest):
                found = name
        return found

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._keep_fresh(), name="lineinspect-keys")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def refresh(self) -> None:
        try:
            self._hashes = await asyncio.to_thread(self.db.active_key_hashes)
        except SQLAlchemyError as exc:  # keep the keys we know until the database is back
            log.warning("cannot read API keys, keeping the %d known: %s", len(self._hashes), str(exc).splitlines()[0])

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()
