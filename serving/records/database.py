"""The service's database, SQLite (WAL) or PostgreSQL through SQLAlchemy 2: migrated at start, and
inspection records, API keys and model loads in and out of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import ArgumentError

from annotation.errors import LineInspectError
from serving.records.model import InspectionRecord
from serving.records.tables import api_keys, aware, inspections, model_loads, naive_utc

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
DATABASE_URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class InspectionFilter:
    line: str | None = None
    station: str | None = None
    camera: str | None = None
    part_id: str | None = None
    verdict: str | None = None  # normal | defect | error
    since: datetime | None = None
    until: datetime | None = None
    ocr_missing: bool | None = None


class Database:
    """The service's one database; every method is blocking (call it from a thread in async code)."""

    def __init__(self, url: str) -> None:
        try:  # errors here may quote the URL, so they never do: it may hold a password
            backend = sa.engine.make_url(url).get_backend_name()
        except ArgumentError:
            raise LineInspectError(f"database_url is not a database URL: write {DATABASE_URL_FORMS}") from None
        if backend not in ("sqlite", "postgresql"):
            raise LineInspectError(f"database_url: {backend} is not supported: write {DATABASE_URL_FORMS}")
        try:
            connect = {"connect_timeout": 5} if backend == "postgresql" else {}  # an unreachable host fails fast
            self.engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect)
        except ModuleNotFoundError as exc:
            raise LineInspectError(f"database_url needs the {exc.name} package: pip install it") from None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def migrate(self) -> None:
        """Bring the schema to the newest revision shipped in serving/migrations. Instances started together on one
        PostgreSQL database take turns: the first migrates, the others then find the schema current."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            advisory_lock(connection, "lineinspect:migrations")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def insert_inspections(self, records: list[InspectionRecord]) -> int:
        """One transaction; records already stored (a replayed spool or journal, a retried request with its
        idempotency key) are skipped. Returns how many were stored."""
        insert = _insert_ignoring_duplicates(self.engine.dialect.name).returning(inspections.c.id)
        with self.engine.begin() as connection:
            return len(connection.execute(insert, [r.row() for r in records]).all())

    def list_inspections(self, where: InspectionFilter, limit: int, offset: int) -> list[InspectionRecord]:
        """Newest first."""
        query = sa.select(inspections)
        for name in ("line", "station", "camera", "part_id"):
            if (value := getattr(where, name)) is not None:
                query = query.where(inspections.c[name] == value)
        if where.verdict == "error":
            query = query.where(inspections.c.error_code.is_not(None))
        elif where.verdict is not None:
            query = query.where(inspections.c.verdict == where.verdict)
        if where.ocr_missing is not None:
            query = query.where(inspections.c.ocr_missing == where.ocr_missing)
        if where.since is not None:
            query = query.where(inspections.c.created_at >= naive_utc(where.since))
        if where.until is not None:
            query = query.where(inspections.c.created_at < naive_utc(where.until))
        query = query.order_by(inspections.c.created_at.desc(), inspections.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(query).mappings()]

    def get_inspection(self, inspection_id: str) -> InspectionRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(inspections).where(inspections.c.id == inspection_id)).mappings().first()
        return _record(row) if row else None

    def record_model_load(self, name: str, version: str, sha256: str, path: str, loaded_at: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                model_loads.insert(),
                {"name": name, "version": version, "sha256": sha256, "path": path, "loaded_at": naive_utc(loaded_at)},
            )

    def model_loads(self, limit: int = 20) -> list[dict[str, Any]]:
        """The models this database has seen loaded, newest first."""
        query = sa.select(model_loads).order_by(model_loads.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [{**row, "loaded_at": aware(row["loaded_at"])} for row in rows]

    def add_key(self, name: str, key_hash: str, prefix: str) -> None:
        with self.engine.begin() as connection:
            active = connection.execute(
                sa.select(api_keys.c.id).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            ).first()
            if active:
                raise LineInspectError(f"an active key named {name!r} exists: revoke it first or choose another name")
            connection.execute(
                api_keys.insert(),
                {"name": name, "key_hash": key_hash, "prefix": prefix, "created_at": naive_utc(datetime.now(UTC))},
            )

    def revoke_key(self, name: str) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=naive_utc(datetime.now(UTC)))
            )
        if not result.rowcount:
            raise LineInspectError(f"no active key named {name!r} (see `lineinspect keys list`)")
        return result.rowcount

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(api_keys).order_by(api_keys.c.id)).mappings().all()
        return [ApiKey(r["name"], r["prefix"], aware(r["created_at"]), aware(r["revoked_at"])) for r in rows]

    def active_key_hashes(self) -> dict[str, str]:
        """key hash -> key name, for every key not revoked."""
        query = sa.select(api_keys.c.key_hash, api_keys.c.name).where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as connection:
            return {key_hash: name for key_hash, name in connection.execute(query)}

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; WAL makes it safe
    cursor.execute("PRAGMA busy_timeout=5000")  # the keys CLI may write while the service does
    cursor.close()


def advisory_lock(connection: sa.Connection, name: str) -> None:
    """Wait for the PostgreSQL advisory lock called `name` and hold it until the connection's transaction ends, so that
    service instances sharing the database do one thing at a time. SQLite serves one instance: nothing to take."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _insert_ignoring_duplicates(dialect: str):
    """An insert of inspection records that skips those whose id is already stored."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(inspections).on_conflict_do_nothing(index_elements=["id"])


def _record(row) -> InspectionRecord:
    return InspectionRecord.model_validate({**row, "created_at": aware(row["created_at"])})
