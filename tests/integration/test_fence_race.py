"""The lease's fence against a takeover in flight: a fence check, heartbeat or release that runs
while another writer is taking the lease over compares the owner the takeover committed, never the
one it was replacing. The interleaving is forced, not hoped for: the takeover's transaction is held
open (with the lease node's lock) until the racing statement is seen waiting for that lock."""

import socket
import threading
import time
from typing import Any

import neo4j
import pytest

from cxrneo.db.connection import Database
from cxrneo.db.lease import claim, release
from cxrneo.db.queries import cypher
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
TAKER = "test-taker:1:1:takeover"
# test-only: how many transactions wait for a lock now (the racing statement, once it queues)
WAITING = "SHOW TRANSACTIONS YIELD status WHERE status STARTS WITH 'Blocked' RETURN count(*) AS n"


def _race(settings: Settings, db: Database, statement: str, owner: str) -> list[dict[str, Any]]:
    """Run `statement` for `owner` while a takeover of `owner`'s lease holds the lease node's lock,
    and commit the takeover only once `statement` waits for that lock; `statement`'s rows."""
    got: list[list[dict[str, Any]]] = []
    with neo4j.GraphDatabase.driver(settings.neo4j_uri, auth=(settings.neo4j_user, settings.password())) as drv:
        with drv.session(database=settings.neo4j_database) as taker, drv.session(database=settings.neo4j_database) as s:
            tx = taker.begin_transaction()
            row = tx.run(cypher("claim_writer_lease"), owner=TAKER, command="takeover", host=socket.gethostname(),
                         pid=1, stale=owner, ttlMs=60_000).single()
            assert row is not None and row["claimed"]  # not committed yet: the lock is held
            racer = threading.Thread(target=lambda: got.append(db.write(statement, owner=owner)))
            racer.start()
            deadline = time.monotonic() + 60
            while s.run(WAITING).single(strict=True)["n"] == 0:
                assert time.monotonic() < deadline, f"{statement} never waited for the lease node's lock"
                time.sleep(0.05)
            tx.commit()
            racer.join(60)
    assert got, f"{statement} did not finish"
    return got[0]


@pytest.mark.parametrize("statement", ["check_writer_fence", "renew_writer_lease", "release_writer_lease"])
def test_a_statement_racing_a_takeover_sees_the_new_owner(
    clean_db: Database, neo4j_settings: Settings, statement: str
) -> None:
    old = claim(clean_db, "ingest")
    old._stop.set()  # no heartbeat of its own: only the raced statement touches the lease
    try:
        (row,) = _race(neo4j_settings, clean_db, statement, old.owner)
        assert next(iter(row.values())) == 0, f"{statement} still saw {old.owner} as the holder"
        (held,) = clean_db.read("fetch_writer_lease")
        assert held["owner"] == TAKER and held["command"] == "takeover"  # the new holder's lease stands
    finally:
        clean_db.write("release_writer_lease", owner=TAKER)
        release(old)  # a no-op: the lease is not its own any more
    assert not clean_db.read("fetch_writer_lease")
