"""The generation contract's keys and checks (cxrneo/db/generations.py), on GraphMeta values."""

from cxrneo.db import generations as gen
from cxrneo.db.meta import GraphMeta

GRAPH = "6f1c1f52-9d43-4a3e-8d0b-2f1d8b1e0c11"


def _meta(**kw: object) -> GraphMeta:
    base: dict[str, object] = {"threshold": 0.5, "nodes": 10, "edges": 20, "generation": 4,
                               "communityGeneration": 4, "dataGeneration": 3, "graphId": GRAPH}
    return GraphMeta.model_validate({**base, **kw})


def test_the_cache_keys() -> None:
    m = _meta()
    assert gen.data_key(m) == (GRAPH, 3) and gen.community_key(m) == (GRAPH, 4) and gen.state_key(m) == (GRAPH, 4, 4)
    assert gen.data_key(_meta(dataGeneration=None)) == (GRAPH, 4)  # graphs written before dataGeneration
    # a community run moves generation and communityGeneration, never the data key
    after_run = _meta(generation=5, communityGeneration=5)
    assert gen.data_key(after_run) == gen.data_key(m) and gen.community_key(after_run) != gen.community_key(m)


def test_a_read_is_kept_only_when_graphmeta_did_not_move() -> None:
    m = _meta()
    assert gen.data_unchanged(m, _meta()) and gen.communities_unchanged(m, _meta())
    began = _meta(generation=5, writing="communities")  # a community run began during the read
    assert not gen.data_unchanged(m, began) and not gen.communities_unchanged(m, began)
    assert not gen.data_unchanged(m, None) and not gen.communities_unchanged(m, None)  # reset meanwhile
    other = _meta(graphId="0b7e7c5e-8a53-4f5e-9a3c-0d6c1b2a3e4f")
    assert not gen.data_unchanged(m, other) and not gen.communities_unchanged(m, other)
    assert not gen.communities_unchanged(m, _meta(communityGeneration=3))
    assert not gen.data_unchanged(_meta(writing="communities"), _meta(writing="communities"))  # data: no writer


def test_check_names_each_broken_invariant() -> None:
    assert gen.check(_meta()) == []
    assert gen.check(_meta(dataGeneration=5)) == ["dataGeneration 5 is ahead of generation 4"]
    assert gen.check(_meta(communityGeneration=6, writing="x")) == [
        "communityGeneration 6 is ahead of generation 4", "unknown writer 'x'"]
