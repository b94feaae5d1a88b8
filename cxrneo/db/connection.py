"""The one database seam: a Neo4j driver wrapper that runs named statements from cypher/.

Only this module calls the neo4j driver. Driver errors become DatabaseError with one line.
"""

import copy
import os
import random
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import neo4j
from neo4j import exceptions as nx

from cxrneo.db.queries import cypher
from cxrneo.errors import DatabaseError
from cxrneo.settings import Settings


def _explain(e: Exception, uri: str, user: str) -> DatabaseError:
    if isinstance(e, nx.AuthError):
        return DatabaseError(f"Neo4j at {uri} refused the password for user {user!r}")
    if isinstance(e, nx.ServiceUnavailable):
        return DatabaseError(f"cannot reach Neo4j at {uri} (is it running? try `cxrneo db start`)")
    if isinstance(e, nx.ClientError) and "ProcedureNotFound" in (e.code or ""):
        return DatabaseError(f"a procedure is missing: is Graph Data Science installed? ({e.message})")
    if isinstance(e, nx.Neo4jError):
        message = " ".join(ln.strip() for ln in (e.message or "").splitlines() if ln.strip())
        return DatabaseError(f"Neo4j error {e.code}: {message}")  # one line, the reason included
    return DatabaseError(f"Neo4j driver error: {e}")


def _retryable(e: BaseException | None) -> bool:
    """Whether `e`, or an error it was raised from, is one the server says to retry (a deadlock
    between concurrent writers, a leader switch). The driver retries these itself, except when
    rolling back the failed transaction raises a second, non-retryable error over the first."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (nx.Neo4jError, nx.DriverError)) and e.is_retryable():
            return True
        e = e.__cause__ or e.__context__
    return False


RETRIES = 8  # attempts of one managed transaction beyond the driver's own retries
RETRY_SECONDS = 30.0  # the driver's default retry window; a service passes less (Database.connect)
SERVICE_RETRY_SECONDS = 2.0  # what `cxrneo serve` and the in-process query use


FAULT_ENV = "CXRNEO_FAULT_AFTER"
_fault_seen: dict[str, int] = {}


def _fault_point(name: str) -> None:
    """Fault injection for tests and scripts/chaos.py: with CXRNEO_FAULT_AFTER=<statement>[:<n>]
    the process kills itself (SIGKILL, like `kill -9`) right after the n-th (default 1st)
    completed run of that named statement."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _fault_seen[name] = _fault_seen.get(name, 0) + 1
    if _fault_seen[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)


class LeaseLostError(DatabaseError):
    """A fenced write found that its writer no longer holds the lease (another writer took it over)."""


def _check_fence(tx: "neo4j.ManagedTransaction", owner: str, name: str) -> None:
    held = tx.run(cypher("check_writer_fence"), {"owner": owner}).single()
    if held is None or not held["held"]:
        raise LeaseLostError(f"this writer lost its writer lease to another writer; `{name}` was not committed")


class _QuietList(list):  # type: ignore[type-arg]
    """A parameter list with a short repr: the driver formats a debug repr of every parameter even
    when debug logging is off, which costs more than sending 1024-float codes (measured 3x)."""

    def __repr__(self) -> str:
        return f"<{len(self)} items>"


def _quiet(params: dict[str, Any]) -> dict[str, Any]:
    return {k: _QuietList(v) if isinstance(v, list) else v for k, v in params.items()}


class Database:
    """A connected Neo4j database; run named statements with parameters only."""

    def __init__(self, driver: neo4j.Driver, database: str, uri: str = "", user: str = "",
                 retry_seconds: float = RETRY_SECONDS, fence: str = "") -> None:
        self._driver = driver
        self.database = database
        self.uri = uri
        self.user = user
        self.retry_seconds = retry_seconds
        self.fence = fence  # the writer lease's owner every write of this handle checks ("" = none)

    def fenced(self, owner: str) -> "Database":
        """This database (same driver) with every write fenced by the writer lease `owner`: each
        write transaction first checks, under the lease node's lock, that `owner` still holds the
        lease, and raises LeaseLostError (the transaction rolled back) when it does not. Auto-commit
        statements (GDS procedures, CALL IN TRANSACTIONS) cannot share a transaction with the check:
        it runs in its own transaction immediately before them."""
        handle = copy.copy(self)
        handle.fence = owner
        return handle

    @classmethod
    def connect(cls, settings: Settings, retry_seconds: float = RETRY_SECONDS) -> "Database":
        """Open a driver from settings and check it answers (wrong password -> one line).

        ``retry_seconds`` bounds how long one statement is retried on transient errors, the driver's
        own retries included: writers keep the default (a deadlock or a leader switch passes), a
        service answering people passes a few seconds (Neo4j down: a 503 at once, not a hang)."""
        uri, user = settings.neo4j_uri, settings.neo4j_user
        try:
            driver = neo4j.GraphDatabase.driver(
                uri, auth=(user, settings.password()), notifications_min_severity="OFF",
                max_transaction_retry_time=retry_seconds,
            )
            driver.verify_connectivity()
        except (nx.Neo4jError, nx.DriverError, OSError, ValueError) as e:
            raise _explain(e, uri, user) from e
        return cls(driver, settings.neo4j_database, uri, user, retry_seconds)

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (nx.Neo4jError, nx.DriverError, OSError) as e:
            raise _explain(e, self.uri, self.user) from e

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read statement (retried on transient errors), rows as dicts: one statement in an
        auto-commit transaction, one round trip (a managed transaction's BEGIN and COMMIT are two more)."""
        return self._managed(name, params, write=False)

    def write(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a write statement in one managed transaction (retried on transient errors)."""
        return self._managed(name, params, write=True, fence=self.fence)

    def _managed(self, name: str, params: dict[str, Any], write: bool, fence: str = "") -> list[dict[str, Any]]:
        query, params = cypher(name), _quiet(params)

        def work(tx: neo4j.ManagedTransaction) -> list[dict[str, Any]]:
            if fence:
                _check_fence(tx, fence, name)
            return [r.data() for r in tx.run(query, params)]

        t0 = time.monotonic()
        with self._errors():
            for attempt in range(RETRIES):
                try:
                    if write:
                        with self._driver.session(database=self.database) as s:
                            rows = s.execute_write(work)
                    else:
                        with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as s:
                            rows = [r.data() for r in s.run(query, params)]
                    break
                except (nx.Neo4jError, nx.DriverError) as e:
                    spent = time.monotonic() - t0 >= self.retry_seconds
                    if attempt + 1 == RETRIES or spent or not _retryable(e):
                        raise
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        _fault_point(name)
        return rows

    def write_batches(
        self, name: str, rows: Sequence[Mapping[str, Any]], batch: int = 10_000, **params: Any
    ) -> Iterator[int]:
        """UNWIND `rows` in batches (each its own retried transaction); yields rows done."""
        for start in range(0, len(rows), batch):
            chunk = list(rows[start : start + batch])
            self.write(name, rows=chunk, **params)
            yield len(chunk)

    def auto(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a statement in an auto-commit transaction (GDS procedures, schema, CALL IN TRANSACTIONS)."""
        query = cypher(name)
        if self.fence and not self._managed("check_writer_fence", {"owner": self.fence}, write=True)[0]["held"]:
            raise LeaseLostError(f"this writer lost its writer lease to another writer; `{name}` was not started")
        with self._errors(), self._driver.session(database=self.database) as s:
            rows = [r.data() for r in s.run(query, params)]
        _fault_point(name)
        return rows
