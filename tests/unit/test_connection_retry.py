"""A deadlock between concurrent writers is retried even when the driver hides it behind a
second error raised while rolling back (seen in CI with 4 edge writers: the driver's own retry
gave up on "The result has failed", a non-retryable error raised from the deadlock)."""

from typing import Any

import pytest
from neo4j import exceptions as nx

from cxrneo.db import connection
from cxrneo.db.connection import Database
from cxrneo.errors import DatabaseError


def _deadlock() -> nx.Neo4jError:
    return nx.TransientError._hydrate_neo4j(
        code="Neo.TransientError.Transaction.DeadlockDetected", message="deadlock detected"
    )


def _hidden_deadlock() -> nx.DriverError:
    try:
        raise _deadlock()
    except nx.Neo4jError as first:
        try:
            raise nx.ResultFailedError(None, "The result has failed.") from first
        except nx.DriverError as second:
            return second


class _Session:
    def __init__(self, driver: "_Driver") -> None:
        self.driver = driver

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute_write(self, work: Any) -> list[dict[str, Any]]:
        self.driver.calls += 1
        if self.driver.failures:
            raise self.driver.failures.pop(0)
        return [{"ok": self.driver.calls}]

    def run(self, query: str, params: dict[str, Any]) -> list["_Record"]:  # an auto-commit read
        return [_Record(row) for row in self.execute_write(None)]


class _Record:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def data(self) -> dict[str, Any]:
        return self.row


class _Driver:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def session(self, database: str, default_access_mode: str | None = None) -> _Session:
        return _Session(self)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection.time, "sleep", lambda s: None)


def test_a_deadlock_hidden_behind_a_rollback_error_is_retried() -> None:
    assert not _hidden_deadlock().is_retryable() and connection._retryable(_hidden_deadlock())
    driver = _Driver([_hidden_deadlock(), _hidden_deadlock()])
    rows = Database(driver, "neo4j").write("merge_similar_edges", rows=[])  # type: ignore[arg-type]
    assert rows == [{"ok": 3}] and driver.calls == 3


def test_an_error_that_is_not_transient_is_not_retried() -> None:
    syntax = nx.ClientError._hydrate_neo4j(code="Neo.ClientError.Statement.SyntaxError", message="bad\nquery")
    driver = _Driver([syntax])
    with pytest.raises(DatabaseError, match=r"^Neo4j error Neo.ClientError.Statement.SyntaxError: bad query$"):
        Database(driver, "neo4j").read("count_graph")  # type: ignore[arg-type]
    assert driver.calls == 1


def test_retries_end_with_one_clear_line() -> None:
    driver = _Driver([_hidden_deadlock() for _ in range(connection.RETRIES)])
    with pytest.raises(DatabaseError, match="^Neo4j driver error: The result has failed"):
        Database(driver, "neo4j").write("merge_similar_edges", rows=[])  # type: ignore[arg-type]
    assert driver.calls == connection.RETRIES


def test_a_read_is_one_auto_commit_statement_retried_on_a_transient_error() -> None:
    driver = _Driver([_deadlock()])
    assert Database(driver, "neo4j").read("count_graph") == [{"ok": 2}]  # type: ignore[arg-type]
    assert driver.calls == 2
