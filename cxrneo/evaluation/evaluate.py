"""Retrieval evaluation (docs/method.md section 6): patient split, graph, communities, queries -> scores."""

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from cxrneo import labels as lsets
from cxrneo.archive.codes import Codes
from cxrneo.errors import ConfigError
from cxrneo.evaluation import metrics as m
from cxrneo.filters import FIELDS, Facets, QueryFilter
from cxrneo.filters import passing as filter_rows
from cxrneo.graph import DEFAULT_MEAN_DEGREE, Edges, degree_stats, normalise, resolve_threshold, similarity_edges
from cxrneo.records import Hit, ImageRecord
from cxrneo.retrieval.method import Method
from cxrneo.retrieval.question import Question

if TYPE_CHECKING:
    from cxrneo.whiten import Whitening

Form = Literal["positive", "no-finding"]
RANDOM = "random"
# Searcher(q_unit, k, method, exclude) -> ranked hits; built once per database.
Searcher = Callable[[np.ndarray, int, str, frozenset[str]], Sequence[Hit]]


class CommunitiesFn(Protocol):
    """Community per database row, for the graph of ``edges`` at ``threshold``."""

    def __call__(self, db_codes: Codes, edges: Edges, threshold: float) -> np.ndarray: ...


class SearcherFactory(Protocol):
    def __call__(
        self, ids: list[str], unit: np.ndarray, edges: Edges, community: np.ndarray, threshold: float,
        strict: bool, allowed: np.ndarray | None = None,
    ) -> Searcher: ...


class EvalOptions(BaseModel):
    """What to evaluate; empty ``label_sets`` = every set the data supports."""

    label_sets: list[str] = []
    k: int = Field(10, ge=1)
    k_max: int = Field(50, ge=1)
    n_queries: int = Field(1000, ge=1)
    db_size: int | None = Field(None, ge=2)
    seed: int = 0
    threshold: float | None = None
    mean_degree: float | None = None  # default: graph.DEFAULT_MEAN_DEGREE unless threshold is given
    methods: list[Method] = list(Method)
    strict: bool = False
    n_boot: int = Field(default=2000, ge=100)
    n_examples: int = Field(default=4, ge=0)
    community_backend: str = "neo4j-gds-louvain"
    whiten: str = "none"  # none, auto (dim and shrinkage chosen on a split of the database part) or a dimension
    whiten_shrink: float = Field(0.0, ge=0)  # with a given dimension
    filter: QueryFilter | None = None  # score retrieval within it: only passing database images are answers

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: QueryFilter | None) -> QueryFilter | None:
        if v is not None and any(v.value(f.name) for f in FIELDS if f.stored_graph_only):
            raise ValueError("evaluate builds its own communities: a community filter has no meaning here")
        return None if v is None or v.empty() else v

    @field_validator("whiten")
    @classmethod
    def _whiten_value(cls, v: str) -> str:
        from cxrneo.whiten import option

        try:
            return option(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _k_within_curves(self) -> "EvalOptions":
        if self.k > self.k_max:
            raise ValueError(f"k ({self.k}) must not exceed k_max ({self.k_max})")
        return self


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if np.isfinite(v) else None) for k, v in values.items()}


class Score(BaseModel):
    """Mean and 95% interval; None when no query was scored."""

    mean: float | None
    lo: float | None
    hi: float | None


class MethodScores(BaseModel):
    method: str
    precision: Score
    acg: Score  # normalised by |P(q)|
    acg_plain: Score
    ndcg: Score
    precision_curve: list[float]  # mean precision@k, k = 1..k_max
    acg_curve: list[float]
    ndcg_curve: list[float]


class Comparison(BaseModel):
    a: str
    b: str
    metric: str
    diff: float | None
    lo: float | None
    hi: float | None
    frac_a_better: float | None


class SetResult(BaseModel):
    label_set: str
    form: Form
    labels: list[str]
    scored: int
    left_out: int  # queries without a positive label (form "positive" only)
    zero_ideal: int  # scored queries no database image shares a label with (nDCG = 0)
    methods: list[MethodScores]
    comparisons: list[Comparison]


class GraphInfo(BaseModel):
    threshold: float
    nodes: int
    edges: int
    mean_degree: float
    max_degree: int
    isolated: int
    communities: int
    backend: str


class MethodRun(BaseModel):
    method: str
    seconds: float
    fallback: int  # queries answered by plain cosine ranking (no neighbour at T)
    short: int  # queries with fewer than k_max results


class Example(BaseModel):
    query: ImageRecord
    results: dict[str, list[ImageRecord]]


class WhitenInfo(BaseModel):
    """The whitening an evaluation used: fitted on its database part only."""

    dim: int
    shrink: float
    chosen: str  # how dim and shrink were chosen
    validation: dict[str, float] = {}  # "dim/shrink" -> kNN precision@k on the validation split ("0/0" raw)
    graph: GraphInfo


class EvalResult(BaseModel):
    options: EvalOptions
    checkpoint_sha256: str
    n_images: int
    n_db: int
    n_queries: int
    graph: GraphInfo
    runs: list[MethodRun]
    results: list[SetResult]
    examples: list[Example]
    whitening: WhitenInfo | None = None


def _group_keys(images: Sequence[ImageRecord]) -> list[str]:
    return [r.patient_id or f"image:{r.id}" for r in images]  # unknown patient: its own


def patient_split(
    images: Sequence[ImageRecord], n_queries: int, seed: int = 0, db_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(database rows, query rows), seeded; no patient on both sides.

    Patients are shuffled and taken for queries until ``n_queries`` images are reached
    (the rest of the last patient's images are left out); all other patients form the
    database, subsampled to ``db_size`` images when given.
    """
    keys = _group_keys(images)
    by_patient: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_patient.setdefault(key, []).append(i)
    patients = list(by_patient)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    queries: list[int] = []
    taken = 0
    for p in order:
        if len(queries) >= n_queries:
            break
        queries += by_patient[patients[p]]
        taken += 1
    if len(queries) < n_queries:
        raise ConfigError(f"asked for {n_queries} queries but the codes hold {len(images)} images")
    db = np.array(sorted(i for p in order[taken:] for i in by_patient[patients[p]]), dtype=np.int64)
    if db.size < 2:
        raise ConfigError(f"{n_queries} queries leave {db.size} database images; ask for fewer queries")
    if db_size is not None and db_size < db.size:
        db = np.sort(rng.choice(db, db_size, replace=False))
    return db, np.array(queries[:n_queries], dtype=np.int64)


def random_results(
    n_db: int, query_groups: np.ndarray, db_groups: np.ndarray, k: int, seed: int = 0,
    passing: np.ndarray | None = None,
) -> np.ndarray:
    """Random retrieval: k distinct database rows per query (among `passing` ones), never of its own
    patient; -1 pads."""
    rng = np.random.default_rng(seed)
    out = np.full((len(query_groups), k), -1, dtype=np.int64)
    for i, g in enumerate(query_groups):
        allowed = np.flatnonzero((db_groups != g) & (True if passing is None else passing))
        take = rng.choice(allowed, min(k, allowed.size), replace=False)
        out[i, : take.size] = take
    return out


def retriever_searcher(
    ids: list[str], unit: np.ndarray, edges: Edges, community: np.ndarray, threshold: float,
    strict: bool = False, allowed: np.ndarray | None = None,
) -> Searcher:
    """The real engine: cxrneo.retrieval's MemoryGraph + Retriever (the one integration seam); with
    `allowed`, every method answers among the allowed rows (a filter, as the service does)."""
    from cxrneo.retrieval.engine import Retriever
    from cxrneo.retrieval.memory import MemoryGraph

    view = MemoryGraph.build(ids, edges, [int(c) for c in community])
    engine = Retriever(view, unit, ids, threshold)

    def search(q: np.ndarray, k: int, method: str, exclude: frozenset[str]) -> Sequence[Hit]:
        return engine.query(q, Question(k, method, strict=strict, exclude=exclude, allowed=allowed))

    return search


def louvain_in_memory(db_codes: Codes, edges: Edges, threshold: float, seed: int = 0) -> np.ndarray:
    """Louvain by networkx, in memory: tests and the explicit ``--no-neo4j`` path only."""
    import networkx as nx  # only here: a torch dependency, not needed elsewhere

    g = nx.Graph()
    g.add_nodes_from(range(len(db_codes)))
    g.add_edges_from(zip(edges.src.tolist(), edges.dst.tolist(), strict=True))
    community = np.empty(len(db_codes), dtype=np.int64)
    for c, members in enumerate(nx.community.louvain_communities(g, seed=seed)):
        community[list(members)] = c
    return community


def _run_queries(
    search: Searcher, q_unit: np.ndarray, excludes: list[frozenset[str]], row_of: dict[str, int],
    opts: EvalOptions, progress: Callable[[int], None] | None,
) -> tuple[dict[str, np.ndarray], list[MethodRun]]:
    results: dict[str, np.ndarray] = {}
    runs: list[MethodRun] = []
    for method in opts.methods:
        out = np.full((q_unit.shape[0], opts.k_max), -1, dtype=np.int64)
        fallback = short = 0
        start = time.perf_counter()
        for i in range(q_unit.shape[0]):
            hits = list(search(q_unit[i], opts.k_max, method, excludes[i]))[: opts.k_max]
            out[i, : len(hits)] = [row_of[h.image_id] for h in hits]
            fallback += any(h.fallback for h in hits)
            short += len(hits) < opts.k_max
            if progress:
                progress(1)
        runs.append(MethodRun(method=method, seconds=time.perf_counter() - start, fallback=fallback, short=short))
        results[method] = out
    return results, runs


def _score_set(
    name: str, form: Form, q_rec: Sequence[ImageRecord], db_rec: Sequence[ImageRecord],
    qg: np.ndarray, dg: np.ndarray, results: dict[str, np.ndarray], opts: EvalOptions,
) -> SetResult:
    ls = lsets.get(name)
    nf = form == "no-finding"
    lq = lsets.matrix([r.labels for r in q_rec], ls, nf)
    ld = lsets.matrix([r.labels for r in db_rec], ls, nf)
    n_pos = lq.sum(axis=1)
    keep = n_pos > 0
    lq, n_pos = lq[keep], n_pos[keep]
    ideal = m.ideal_relevance(lq, ld, opts.k_max, qg[keep], dg)
    k = opts.k
    per_query: dict[str, dict[str, np.ndarray]] = {}
    methods: list[MethodScores] = []
    for method, res in results.items():
        rel = m.relevance(lq, ld, res[keep])
        pq = {
            "precision": m.precision_at_k(rel, k),
            "acg": m.acg_at_k(rel, n_pos, k),
            "acg_plain": m.acg_at_k(rel, None, k),
            "ndcg": m.ndcg_at_k(rel, ideal, k),
        }
        per_query[method] = pq
        ci = {key: Score(**_finite(m.bootstrap_ci(v, opts.n_boot, seed=opts.seed)._asdict())) for key, v in pq.items()}
        methods.append(MethodScores(
            method=method, **ci,
            precision_curve=m.precision_curve(rel).mean(axis=0).tolist() if rel.size else [],
            acg_curve=m.acg_curve(rel, n_pos).mean(axis=0).tolist() if rel.size else [],
            ndcg_curve=m.ndcg_curve(rel, ideal).mean(axis=0).tolist() if rel.size else [],
        ))
    def compare(a: str, b: str, metric: str) -> Comparison:
        return Comparison(a=a, b=b, metric=metric, **_finite(m.paired_bootstrap(
            per_query[a][metric], per_query[b][metric], opts.n_boot, seed=opts.seed)._asdict()))

    knn = Method.KNN.value
    comparisons = [  # each method against exact kNN in its own space; whitened against raw
        compare(a, b, metric)
        for a, b in [(a, knn) for a in per_query if a not in (knn, RANDOM) and not a.endswith(WHITENED)]
        + [(a, a.removesuffix(WHITENED)) for a in per_query if a.endswith(WHITENED)]
        if b in per_query
        for metric in ("precision", "acg", "ndcg")
    ] + [  # does each method beat chance? (the paper's headline metric)
        compare(a, RANDOM, "precision") for a in per_query if a != RANDOM and RANDOM in per_query
    ]
    return SetResult(
        label_set=name, form=form, labels=list(lsets.column_names(ls, nf)), scored=int(keep.sum()),
        left_out=int((~keep).sum()), zero_ideal=int((ideal.sum(axis=1) == 0).sum()),
        methods=methods, comparisons=comparisons,
    )


def choose_label_sets(codes: Codes, requested: Sequence[str]) -> list[str]:
    """The requested label sets (checked against what the codes' labels allow), or all allowed."""
    allowed = lsets.scorable(codes.label_set, (r.labels for r in codes.images))
    for name in requested:
        lsets.get(name)
        if codes.label_set and name.lower() not in allowed:
            raise ConfigError(f"codes labelled with {codes.label_set!r} cannot be scored as {name!r} "
                              f"(possible: {', '.join(allowed)})")
    chosen = [n.lower() for n in requested] or allowed
    if not chosen:
        raise ConfigError("cannot tell which label set the codes' findings belong to; pass --label-set")
    return chosen


WHITENED = " (whitened)"


def _space(
    unit: np.ndarray, db_rows: np.ndarray, q_rows: np.ndarray, db_codes: Codes, opts: EvalOptions,
    communities_fn: CommunitiesFn, searcher_factory: SearcherFactory, excludes: list[frozenset[str]],
    progress: Callable[[int], None] | None, passing: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], list[MethodRun], GraphInfo]:
    """Graph, communities and every method's answers in one code space (rows of ``unit``)."""
    db_unit, q_unit = unit[db_rows], unit[q_rows]
    degree = DEFAULT_MEAN_DEGREE if opts.threshold is None and opts.mean_degree is None else opts.mean_degree
    threshold = resolve_threshold(None, opts.threshold, degree, db_unit, seed=opts.seed)
    edges = similarity_edges(db_unit, threshold)
    community = np.asarray(communities_fn(db_codes, edges, threshold))
    if community.shape != (len(db_rows),):
        raise ConfigError(f"community detection returned {community.shape} labels for {len(db_rows)} images")
    db_ids = db_codes.ids
    search = (searcher_factory(db_ids, db_unit, edges, community, threshold, opts.strict) if passing is None
              else searcher_factory(db_ids, db_unit, edges, community, threshold, opts.strict, allowed=passing))
    results, runs = _run_queries(search, q_unit, excludes, {id_: i for i, id_ in enumerate(db_ids)}, opts, progress)
    stats = degree_stats(len(db_rows), edges, threshold)
    graph = GraphInfo(
        threshold=float(threshold), nodes=stats.nodes, edges=stats.edges, mean_degree=stats.mean_degree,
        max_degree=stats.max_degree, isolated=stats.isolated, communities=int(np.unique(community).size),
        backend=opts.community_backend,
    )
    return results, runs, graph


def auto_whitening(codes: Codes, k: int, label_set: str, seed: int = 1) -> tuple["Whitening", str, dict[str, float]]:
    """A transform fitted on all of ``codes``, its dimension and shrinkage chosen by kNN precision@k
    (abnormal queries, by their findings) of a patient split of those codes: 20% of the patients as
    validation queries among the rest. Returns it, how it was chosen, and every candidate's score."""
    from cxrneo.whiten import Spectrum, choose

    fit_rows, val_rows = patient_split(codes.images, max(10, len(codes) // 5), seed=seed)
    labels = lsets.matrix([r.labels for r in codes.images], lsets.get(label_set))
    keep = val_rows[labels[val_rows].any(axis=1)]  # abnormal validation queries, as the main table
    if keep.size < 5:
        raise ConfigError("too few images with a finding to choose the whitening by them: give a dimension")

    def score(db_unit: np.ndarray, q_unit: np.ndarray) -> float:
        top = np.argsort(-(q_unit @ db_unit.T), axis=1, kind="stable")[:, :k]
        return float(m.precision_at_k(m.relevance(labels[keep], labels[fit_rows], top), k).mean())

    choice = choose(codes.codes, keep, fit_rows, score)
    table = {f"{d}/{a:g}": v for (d, a), v in sorted(choice.scores.items())}
    how = (f"auto: best kNN precision@{k} ({label_set}, abnormal) of {len(keep)} validation queries among "
           f"{len(fit_rows)} images (a patient split of them): {choice.scores[(choice.dim, choice.shrink)]:.3f}, "
           f"raw codes {choice.scores[(0, 0.0)]:.3f}")
    return Spectrum.of(codes.codes).whitening(choice.dim, choice.shrink), how, table


def _whitening(codes: Codes, db_rows: np.ndarray, opts: EvalOptions, label_set: str) -> tuple["Whitening", str, dict[str, float]]:
    """The transform fitted on the database part only (never the queries); with ``auto`` its dimension
    and shrinkage chosen on a patient split of the database part itself."""
    from cxrneo.whiten import Spectrum

    if opts.whiten != "auto":
        return Spectrum.of(codes.codes[db_rows]).whitening(int(opts.whiten), opts.whiten_shrink), "given", {}
    return auto_whitening(codes.subset(db_rows), opts.k, label_set, seed=opts.seed + 1)


def evaluate(
    codes: Codes, opts: EvalOptions, communities_fn: CommunitiesFn,
    searcher_factory: SearcherFactory = retriever_searcher,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Split, build the database graph, detect communities, answer and score every query; with
    ``opts.whiten`` the same again on whitened codes (fitted on the database part only)."""
    if not any(r.labels for r in codes.images):
        raise ConfigError("these codes carry no findings (e.g. embedded from a PACS without --labels): "
                          "evaluation needs labelled images")
    label_sets = choose_label_sets(codes, opts.label_sets)
    db_rows, q_rows = patient_split(codes.images, opts.n_queries, opts.seed, opts.db_size)
    if len(db_rows) < opts.k:
        raise ConfigError(f"the database part holds {len(db_rows)} images, fewer than K = {opts.k}")
    db_codes = codes.subset(db_rows)
    passing = None
    if opts.filter is not None:
        passing = filter_rows(Facets.from_records(db_codes.images), opts.filter, np.zeros(len(db_rows), np.int64))
        if passing.sum() < opts.k:
            raise ConfigError(f"{int(passing.sum())} database images pass the filter, fewer than K = {opts.k}")
    reachable = len(db_rows) if passing is None else int(passing.sum())
    if reachable < opts.k_max:  # a small archive (or filter): the curves stop at its size
        opts = opts.model_copy(update={"k_max": reachable})
    db_rec, q_rec = db_codes.images, tuple(codes.images[i] for i in q_rows)
    keys = {k: i for i, k in enumerate(dict.fromkeys(_group_keys(codes.images)))}
    groups = np.array([keys[k] for k in _group_keys(codes.images)], dtype=np.int64)
    qg, dg = groups[q_rows], groups[db_rows]
    by_group: dict[int, list[str]] = {}
    for i, g in enumerate(dg):
        by_group.setdefault(int(g), []).append(db_codes.ids[i])
    excludes = [frozenset(by_group.get(int(g), ())) for g in qg]
    space = (db_rows, q_rows, db_codes, opts, communities_fn, searcher_factory, excludes, progress, passing)
    results, runs, graph = _space(normalise(codes.codes), *space)
    whitening: WhitenInfo | None = None
    if opts.whiten != "none":
        w, how, table = _whitening(codes, db_rows, opts, label_sets[0])
        white = w.apply(codes.codes)
        w_results, w_runs, w_graph = _space(white, db_rows, q_rows, db_codes.with_codes(white[db_rows]), *space[3:])
        results.update({k + WHITENED: v for k, v in w_results.items()})
        runs += [r.model_copy(update={"method": r.method + WHITENED}) for r in w_runs]
        whitening = WhitenInfo(dim=w.dim, shrink=w.shrink, chosen=how, validation=table, graph=w_graph)
    start = time.perf_counter()
    results[RANDOM] = random_results(len(db_rows), qg, dg, opts.k_max, opts.seed, passing)
    runs.append(MethodRun(method=RANDOM, seconds=time.perf_counter() - start, fallback=0, short=0))
    scored = [
        _score_set(name, form, q_rec, db_rec, qg, dg, results, opts)
        for name in label_sets for form in ("positive", "no-finding")
    ]
    return EvalResult(
        options=opts.model_copy(update={"label_sets": label_sets}), checkpoint_sha256=codes.checkpoint_sha256,
        n_images=len(codes), n_db=len(db_rows), n_queries=len(q_rows), graph=graph, runs=runs,
        results=scored, examples=_examples(q_rec, db_rec, results, opts), whitening=whitening,
    )


def _examples(
    q_rec: Sequence[ImageRecord], db_rec: Sequence[ImageRecord], results: dict[str, np.ndarray], opts: EvalOptions
) -> list[Example]:
    """The first few queries with at least one finding (all queries when none has), top 5 each."""
    picks = [i for i, r in enumerate(q_rec) if r.labels] or list(range(len(q_rec)))
    return [
        Example(query=q_rec[i], results={
            method: [db_rec[j] for j in res[i, :5] if j >= 0] for method, res in results.items()
        })
        for i in picks[: opts.n_examples]
    ]
