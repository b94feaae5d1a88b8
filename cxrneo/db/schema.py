"""The graph schema: constraints and indexes (statements in cypher/create_*.cypher), idempotent.

The vector index ``image_code`` is optional: nothing in cxrneo queries it (the service answers from
its in-memory codes), it serves people who explore the graph in Neo4j Browser with
``db.index.vector.queryNodes``. It is built only when asked for (``cxrneo ingest --vector-index``,
``cxrneo db vector-index build``), always in one go over codes already stored, and the command waits
until it is online; once it exists every later ingest keeps it (README, *The vector index*).
"""

from cxrneo.db.connection import Database
from cxrneo.errors import DatabaseError

VECTOR_INDEX = "image_code"
VECTOR_WAIT_S = 3600


def ensure_schema(db: Database, wait_seconds: int = 300) -> None:
    """Create every constraint and range index that is missing, then wait until all indexes are
    online. The vector index is never created here (see `build_vector_index`)."""
    db.auto("create_image_id_constraint")
    db.auto("create_community_id_constraint")
    db.auto("create_graph_meta_constraint")
    db.auto("create_image_community_index")
    db.auto("await_indexes", seconds=wait_seconds)


def vector_index_state(db: Database) -> str | None:
    """The vector index's state (ONLINE, POPULATING, FAILED), or None when there is none."""
    states = [r["state"] for r in db.auto("show_indexes") if r["name"] == VECTOR_INDEX]
    return str(states[0]) if states else None


def build_vector_index(db: Database, wait_seconds: int = VECTOR_WAIT_S) -> None:
    """Create the vector index over the stored codes (a no-op when it exists) and return once it
    is online: its whole cost is paid inside the calling command, none of it while serving."""
    db.auto("create_image_code_index")
    db.auto("await_indexes", seconds=wait_seconds)
    state = vector_index_state(db)
    if state != "ONLINE":
        raise DatabaseError(f"the vector index {VECTOR_INDEX} is {state} after its build; drop it "
                            "(`cxrneo db vector-index drop`) and build it again")


def drop_vector_index(db: Database) -> bool:
    """Drop the vector index; whether there was one."""
    had = vector_index_state(db) is not None
    db.auto("drop_image_code_index")
    return had
