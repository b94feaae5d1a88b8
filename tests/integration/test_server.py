"""The Neo4j + GDS server answers and GDS Louvain separates two cliques."""

import pytest

from cxrneo.db.connection import Database

pytestmark = pytest.mark.neo4j

def test_versions_are_the_pinned_ones(neo4j_db: Database) -> None:
    import re
    from pathlib import Path

    from cxrneo.db.server import pinned_versions

    pom = (Path(__file__).resolve().parents[2] / "cxrneo" / "db" / "server-pom.xml").read_text()
    neo_pin = re.search(r"<neo4j\.version>([^<]+)</neo4j\.version>", pom)
    gds_pin = re.search(r"<gds\.version>([^<]+)</gds\.version>", pom)
    assert neo_pin and gds_pin
    assert pinned_versions() == (neo_pin.group(1), gds_pin.group(1))
    row = neo4j_db.read("show_versions")[0]
    assert (row["neo4j"], row["gds"]) == (neo_pin.group(1), gds_pin.group(1))


def test_louvain_separates_two_cliques_joined_by_one_edge(clean_db: Database) -> None:

    clean_db.write("create_clique_pair", size=20)
    rows = clean_db.auto("run_louvain_smoke", graph="smoke-" + __name__)
    by_clique: dict[int, set[int]] = {}
    for r in rows:
        by_clique.setdefault(r["clique"], set()).add(r["community"])
    assert sorted(by_clique) == [0, 1]
    assert all(len(cs) == 1 for cs in by_clique.values())  # each clique is one community
    assert by_clique[0] != by_clique[1]  # and the two differ
