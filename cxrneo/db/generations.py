"""The generation contract: which write moves which counter of GraphMeta, and what a reader may cache.

GraphMeta carries five fields that name one readable state of the graph:

* ``graphId``: a random UUID given when the graph is first created (`merge_graph_meta` on a new
  graph); a `db reset` deletes GraphMeta, so the next graph gets another.
* ``generation``: moves on with every change to the stored graph.
* ``dataGeneration``: the generation at which images or edges last changed.
* ``communityGeneration``: the generation whose communities are stored and verified.
* ``writing``: ``'ingest'`` or ``'communities'`` from a writer's first write to its verified end
  (left set when the writer is killed, until a rerun finishes).

The statements that move them (cypher/*.cypher), all run under the writer lease:

=============================  ==============================================================
statement                      effect
=============================  ==============================================================
begin_graph_write              generation + 1, writing = the writer (before its first write;
                               an ingest into an existing graph and every community run)
merge_graph_meta               a new graph: graphId, generation 0 + 1; then dataGeneration =
                               generation when images or edges changed, and writing cleared
                               when it was 'ingest' (the ingest's verified end)
write_community_generation     communityGeneration = generation, writing cleared (the
                               community run's verified end)
delete_graph_meta              GraphMeta gone: readers refuse until a new graph is written
=============================  ==============================================================

Invariants (checked by `check`, and by tests against the real statements):

1. dataGeneration <= generation and communityGeneration <= generation.
2. kNN may read when writing != 'ingest' and the stored counts equal GraphMeta's; the community
   methods only when, besides, writing is None and communityGeneration == generation.
3. A reader caches images, codes and edges under `data_key` (graphId, dataGeneration), the
   communities under `community_key` (graphId, communityGeneration) and an open Retriever under
   `state_key` (graphId, generation, communityGeneration).
4. A reader checks GraphMeta before it reads (`GraphMeta.require_queryable`) and again after:
   data read at `before` is kept only when `data_unchanged(before, after)`, communities only when
   `communities_unchanged(before, after)`; otherwise the read is refused (retry), never cached.
5. An answer is computed on the generation open in memory, then settled by one statement that reads
   GraphMeta together with the hits' records (`fetch_meta_and_images`): it stands when GraphMeta still
   names that generation under `state_key` (and is queryable), else it is computed again on the one
   GraphMeta names (cxrneo.service.searcher: a bounded number of times, then a clear refusal).
"""

from cxrneo.db.meta import GraphMeta


def data_generation(meta: GraphMeta) -> int:
    """The generation of the images and edges (graphs written before dataGeneration: the generation)."""
    return meta.generation if meta.dataGeneration is None else meta.dataGeneration


def data_key(meta: GraphMeta) -> tuple[str, int]:
    """What a snapshot of images, codes and edges is cached under."""
    return meta.graphId, data_generation(meta)


def community_key(meta: GraphMeta) -> tuple[str, int]:
    """What the communities of a snapshot are cached under."""
    return meta.graphId, meta.communityGeneration


def state_key(meta: GraphMeta) -> tuple[str, int, int]:
    """What an open Retriever (data and communities together) is kept under."""
    return meta.graphId, meta.generation, meta.communityGeneration


def data_unchanged(before: GraphMeta, after: GraphMeta | None) -> bool:
    """Whether images and edges read between two GraphMeta reads are those of `before`: same graph,
    same generation, and no writer began (a community run that began would move generation)."""
    return after is not None and (after.graphId, after.generation, after.writing) == (
        before.graphId, before.generation, None)


def communities_unchanged(before: GraphMeta, after: GraphMeta | None) -> bool:
    """Whether communities read between two GraphMeta reads are those of `before` (a community run
    rewrites Image.community in place, after moving generation and setting writing)."""
    return after is not None and (after.graphId, after.generation, after.communityGeneration, after.writing) == (
        before.graphId, before.generation, before.communityGeneration, before.writing)


def check(meta: GraphMeta) -> list[str]:
    """The invariants GraphMeta breaks (empty when it keeps them all)."""
    broken = []
    if data_generation(meta) > meta.generation:
        broken.append(f"dataGeneration {meta.dataGeneration} is ahead of generation {meta.generation}")
    if meta.communityGeneration > meta.generation:
        broken.append(f"communityGeneration {meta.communityGeneration} is ahead of generation {meta.generation}")
    if meta.writing not in (None, "ingest", "communities"):
        broken.append(f"unknown writer {meta.writing!r}")
    return broken
