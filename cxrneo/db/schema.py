"""The graph schema: constraints and indexes (statements in cypher/create_*.cypher), idempotent."""

from cxrneo.db.connection import Database


def ensure_schema(db: Database, wait_seconds: int = 300, vector: bool = True) -> None:
    """Create every constraint and index that is missing, then wait until they are online.

    ``vector=False`` leaves out the vector index: a first load writes its codes faster without
    it and builds the index once at the end (measured 1.2-1.6x on 6,000 codes).
    """
    db.auto("create_image_id_constraint")
    db.auto("create_community_id_constraint")
    db.auto("create_graph_meta_constraint")
    db.auto("create_image_community_index")
    if vector:
        db.auto("create_image_code_index")
    db.auto("await_indexes", seconds=wait_seconds)
