"""The query service: the one home of "which archived X-rays look like this one?".

`Searcher` resolves a query target (a stored image id, a code, an image file), checks that an
image file goes through the checkpoint whose codes the graph holds, and answers with the
Retriever of the current graph generation. The CLI (in-process), the HTTP API and the demo all
call it.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, PrivateAttr

from cxrneo.db.connection import SERVICE_RETRY_SECONDS, Database
from cxrneo.db.generations import state_key
from cxrneo.db.stored import StoredGraph
from cxrneo.embed import radiograph
from cxrneo.embed.dicom import MAX_PIXELS
from cxrneo.embed.images import declared_pixels
from cxrneo.errors import (
    ConfigError,
    CxrneoError,
    DatabaseError,
    InputError,
    NotFoundError,
    NotReadyError,
    TooLargeError,
)
from cxrneo.filters import passing
from cxrneo.records import CacheUse, Hit, ImageRecord
from cxrneo.retrieval.fastest import LEAST_ROWS, Chosen, Loaded, choose
from cxrneo.retrieval.question import Question
from cxrneo.service import cpu
from cxrneo.service.pixels import ImageFiles, check_size
from cxrneo.service.request import QueryOptions, QueryRequest, rocchio, steer
from cxrneo.service.workers import check_deadline
from cxrneo.settings import Settings
from cxrneo.subregion import Box, check_box

if TYPE_CHECKING:
    from cxrneo.db.meta import GraphMeta
    from cxrneo.db.stored import Generation
    from cxrneo.embed.encoder import Encoder
    from cxrneo.pacs.cache import InstanceCache
    from cxrneo.pacs.dicomweb import DicomWeb
    from cxrneo.retrieval.scan import Kernel
    from cxrneo.similarity import SimilarityMaps



REQUEST_PIXELS = MAX_PIXELS  # the pixels of one request's image files together
GENERATION_RETRIES = 3  # newer generations one answer follows (writes under way) before it is refused

log = logging.getLogger(__name__)


def check_request_pixels(paths: list[Path]) -> None:
    """Every file's declared pixels (read from its header, nothing decoded) within the per-image budget,
    and all of them together within REQUEST_PIXELS (TooLargeError otherwise)."""
    total = 0
    for path in paths:
        total += declared_pixels(path)
        if total > REQUEST_PIXELS:
            raise TooLargeError(f"the images of one query hold more than {REQUEST_PIXELS:,} pixels together")


class QueryAnswer(BaseModel):
    """What `cxrneo query --json` prints and POST /query returns."""

    query: str
    method: str
    k: int
    strict: bool
    excluded: int
    generation: int
    communityGeneration: int  # noqa: N815 - as in GraphMeta
    query_ms: float
    total_ms: float
    hits: list[Hit]
    passing: int | None = None  # with a filter: how many archived images pass it
    familiar: bool = True  # false: the query image is unlike the archive's X-rays (see `unfamiliar`)
    unfamiliar: str | None = None  # why, in one line
    duplicate_of: str | None = None  # the archived image the uploaded one is (answered as that image)
    region: list[float] | None = None  # a region query: the box [x0, y0, x1, y1] the query's code came from
    _rechecks: int = PrivateAttr(default=0)  # exact cosines the answer needed (the service's metrics; not sent)

    @property
    def rechecks(self) -> int:
        """How many exact cosines the first pass left to compute for this answer (cxrneo.retrieval.cosines)."""
        return self._rechecks


@dataclass(frozen=True)
class _Target:
    """What a query asks about: its name in the answer, its code, the ids left out of the answer, and
    whether the code is new (it enters the graph's space first)."""

    name: str
    code: np.ndarray
    exclude: frozenset[str] = frozenset()
    new: bool = False
    doubt: str | None = None  # why the query is unlike the archive's images, when it is
    upload: bool = False  # an image file: may be an archived film uploaded again (duplicate_of)
    region: bool = False  # the code is a region's (no duplicate check, no whole-film familiarity)


class Searcher:
    """Answers queries against the stored graph; safe to share between threads."""

    def __init__(
        self, graph: StoredGraph, checkpoint: Path | None = None, device: str = "auto",
        images: Path | None = None, pacs: "DicomWeb | None" = None, pacs_dir: Path | None = None,
        pacs_cache_bytes: int | None = None,
    ) -> None:
        """`graph`: the archive it answers from (the stored graph, or any object with its methods).
        `pacs_dir`: where instances retrieved from ``pacs`` are kept (None: a private temporary folder),
        at most `pacs_cache_bytes` of them (None: cxrneo.pacs.cache.DEFAULT_MB)."""
        self.pacs = pacs  # a PACS to retrieve the pixels of its images from, when no local file has them
        self.instances: InstanceCache | None = None
        if pacs is not None:
            from cxrneo.pacs import cache

            self.instances = cache.InstanceCache(pacs, pacs_dir, pacs_cache_bytes or cache.DEFAULT_MB << 20)
        self.graph = graph
        self.files = ImageFiles(images)
        self._checkpoint = checkpoint
        self._device = device
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()

    @classmethod
    def connect(
        cls, settings: Settings, checkpoint: Path | None = None, device: str = "auto", images: Path | None = None,
        pacs: "DicomWeb | None" = None, serving: bool = False, pacs_cache_bytes: int | None = None,
    ) -> "Searcher":
        """`serving`: a long-lived service, where `CXRNEO_SCAN=auto` pays once per generation for measuring
        its first passes (cxrneo.retrieval.fastest) and for the chosen one's copy of the codes; a one-shot
        command reads them in float32 (nothing to measure, no torch, nothing to convert)."""
        db = Database.connect(settings, retry_seconds=SERVICE_RETRY_SECONDS)  # Neo4j down: a clear 503 at once
        scan = settings.scan if settings.scan != "auto" or serving else "float32"
        return cls.open(db, settings.snapshot_dir, checkpoint, device, images, pacs,
                        settings.data_dir / "pacs-instances", scan, pacs_cache_bytes)

    @classmethod
    def open(
        cls, db: Database, cache: Path | None, checkpoint: Path | None = None, device: str = "auto",
        images: Path | None = None, pacs: "DicomWeb | None" = None, pacs_dir: Path | None = None,
        scan: str = "auto", pacs_cache_bytes: int | None = None,
    ) -> "Searcher":
        """Over the graph stored in ``db`` (its snapshot kept under ``cache``). `scan`: the first pass over
        the codes (auto, float32, bfloat16 or lowrank; answers are exact whichever it is, see
        cxrneo.retrieval.cosines)."""
        return cls(StoredGraph(db, cache, kernel=_kernel(scan)), checkpoint, device, images, pacs, pacs_dir,
                   pacs_cache_bytes)

    def close(self) -> None:
        self.graph.db.close()

    def warm(self) -> None:
        """Open the current graph now, and from now on build the largest communities' blocks whenever
        a generation opens (a service does this, so that its first queries there do not pay for it)."""
        self.graph.prefetch = True
        self.graph.current()
        if self._checkpoint is not None:
            self.encoder()

    # --- targets ---------------------------------------------------------------------------

    def by_id(self, image_id: str, options: QueryOptions) -> QueryAnswer:
        """Query with a stored image: its own code; it (and with exclude_patient its patient) left out."""
        return self._settled(lambda g: self._by_id(g, image_id, options))

    def by_code(self, code: np.ndarray, options: QueryOptions, name: str = "code") -> QueryAnswer:
        """Query with a code that is not in the graph (a new image's): it enters the graph's space first."""
        target = _Target(name, np.asarray(code, np.float32), new=True)
        return self._settled(lambda g: self._answer(g, target, options))

    def by_examples(
        self, positives: list[str], negatives: list[str], options: QueryOptions,
        uploaded: list[np.ndarray] | None = None, doubt: str | None = None,
    ) -> QueryAnswer:
        """More like these: the Rocchio code of stored (and uploaded) examples, away from the
        counter-examples (request.rocchio); every example is left out of the answer, and with
        exclude_patient the positive examples' patients too."""
        return self._settled(lambda g: self._by_examples(g, positives, negatives, options, uploaded, doubt))

    def search(self, req: QueryRequest) -> QueryAnswer:
        """Answer one validated query request (a stored id, several, or a code)."""
        if req.code is not None:
            if req.not_ids:
                raise InputError("not_ids needs stored examples (id or ids), not a code")
            return self.by_code(np.asarray(req.code, np.float32), req)
        positives, negatives = req.examples()
        if len(positives) == 1 and (not negatives or req.region is not None):
            return self.by_id(positives[0], req)
        return self.by_examples(positives, negatives, req)

    def search_images(self, files: list[tuple[Path, str]], options: QueryOptions) -> QueryAnswer:
        """Answer one or more image files (more like these) with validated options; each file is
        embedded by the checkpoint whose codes the graph holds."""
        if options.exclude_patient:
            raise ConfigError("exclude_patient needs a stored image id (a file has no patient)")
        t0 = time.perf_counter()
        self._need_checkpoint()
        if options.region is not None:
            if len(files) != 1:
                raise InputError("a region needs one image file, not several")
            radiograph.check_size(*files[0])
            encoder = self.encoder(self.graph.meta)
            code, doubt = encoder.region(files[0][0], check_box(options.region))
            return self._settled(lambda g: self._region(
                g, f"{files[0][1]} (region)", code, frozenset(), options, doubt, encoder), t0)
        if len(files) > 1:
            check_request_pixels([p for p, _ in files])  # one file's budget is checked as it is read
        for path, name in files:
            radiograph.check_size(path, name)
        encoder = self.encoder(self.graph.meta)
        codes, doubts = [], []
        for path, name in files:
            check_deadline()
            code, doubt = encoder.look(path)
            codes.append(code)
            doubts.append(f"{name}: {doubt}" if doubt and len(files) > 1 else doubt)
        first = next((d for d in doubts if d), None)

        def answer(g: "Generation") -> QueryAnswer:
            _same_codes(encoder, g.meta)  # the generation that answers holds this checkpoint's codes
            if len(files) == 1 and not options.not_ids:
                return self._answer(g, _Target(files[0][1], codes[0], new=True, doubt=first, upload=True), options)
            return self._by_examples(g, [], options.not_ids, options, codes, first)

        return self._settled(answer, t0)

    def resolve(self, targets: list[str], options: QueryOptions) -> QueryAnswer:
        """Stored image ids first, else image files (several targets: more like these; stored ids and
        files are not mixed)."""
        stored = self.graph.current().retriever.graph.row
        if all(t in stored for t in targets):
            return self.search(QueryRequest(ids=targets, **options.model_dump()))
        missing = [t for t in targets if t not in stored and not Path(t).is_file()]
        if missing:
            raise NotFoundError(f"{missing[0]!r} is neither an image id in the database nor an image file")
        if any(t in stored for t in targets):
            raise InputError("give stored ids or image files as examples, not both")
        return self.search_images([(Path(t), t) for t in targets], options)

    # --- pieces ----------------------------------------------------------------------------

    def _need_checkpoint(self) -> Path:
        if self._checkpoint is None:
            raise ConfigError("image queries need a checkpoint (--checkpoint)")
        return self._checkpoint

    def encoder(self, meta: "GraphMeta | None" = None) -> "Encoder":
        """The checkpoint's encoder, loaded once, checked against the codes the graph holds: those of
        `meta` (a generation's GraphMeta), else of GraphMeta as stored now."""
        checkpoint = self._need_checkpoint()
        with self._encoder_lock:
            if self._encoder is None:
                from cxrneo.embed.encoder import Encoder  # torch only when images are embedded

                self._encoder = Encoder(checkpoint, self._device)
            enc = self._encoder
        _same_codes(enc, self.graph.stored_meta() if meta is None else meta)
        return enc

    def directions(self, meta: "GraphMeta") -> dict[str, np.ndarray]:
        """Each finding's classifier direction in the graph's code space (finding sliders)."""
        if self._checkpoint is None:
            raise ConfigError("finding sliders need the checkpoint whose codes the graph holds "
                              "(`cxrneo serve --checkpoint`, `cxrneo query --checkpoint`)")
        return {name: self.graph.direction_in_graph_space(meta, w) for name, w in self.encoder(meta).directions().items()}

    @property
    def checkpoint_sha256(self) -> str:
        return self._encoder.sha256 if self._encoder is not None else ""

    def _by_id(self, generation: "Generation", image_id: str, options: QueryOptions) -> QueryAnswer:
        code = generation.retriever.code_of(image_id)
        exclude = generation.patient_images(image_id) if options.exclude_patient else frozenset({image_id})
        if options.region is not None:  # the stored film's own cells: its file through the checkpoint
            if self._checkpoint is None:
                raise ConfigError("a region of a stored image needs the checkpoint whose codes the graph holds "
                                  "(`cxrneo serve --checkpoint`, `cxrneo query --checkpoint`)")
            path = self.image_file(image_id)
            encoder = self.encoder(generation.meta)
            code, _ = encoder.region(path, check_box(options.region))
            return self._region(generation, f"{image_id} (region)", code, exclude, options, None, encoder)
        if options.not_ids:
            return self._by_examples(generation, [image_id], options.not_ids, options)
        return self._answer(generation, _Target(image_id, code, exclude), options)

    def _by_examples(
        self, generation: "Generation", positives: list[str], negatives: list[str], options: QueryOptions,
        uploaded: list[np.ndarray] | None = None, doubt: str | None = None,
    ) -> QueryAnswer:
        pos = [generation.retriever.code_of(i) for i in positives]
        for n, code in enumerate(uploaded or [], 1):
            v = self.graph.in_graph_space(generation.meta, code)
            pos.append(v / max(float(np.linalg.norm(v)), 1e-12))
            if doubt is None and (unlike := generation.retriever.doubt(v)):
                doubt = f"example {n}: {unlike}"
        neg = [generation.retriever.code_of(i) for i in negatives]
        if not pos:
            raise InputError("give at least one example")
        code = rocchio(np.stack(pos), np.stack(neg) if neg else np.empty((0, len(pos[0])), np.float32))
        exclude = frozenset(positives) | frozenset(negatives)
        if options.exclude_patient:
            for i in positives:
                exclude |= generation.patient_images(i)
        name = f"{len(pos)} example{'s' if len(pos) != 1 else ''}" + (f", {len(neg)} unlike" if neg else "")
        return self._answer(generation, _Target(name, code, exclude, doubt=doubt), options)

    def _region(
        self, generation: "Generation", name: str, code: np.ndarray, exclude: frozenset[str], options: QueryOptions,
        doubt: str | None, encoder: "Encoder",
    ) -> QueryAnswer:
        """Answer a region's code (cxrneo.subregion), moved away from the counter-examples (Rocchio)
        when the query names some; they are left out of the answer."""
        _same_codes(encoder, generation.meta)
        v = self.graph.in_graph_space(generation.meta, code)
        if options.not_ids:
            v = rocchio((v / max(float(np.linalg.norm(v)), 1e-12))[None],
                        np.stack([generation.retriever.code_of(i) for i in options.not_ids]))
            exclude = exclude | frozenset(options.not_ids)
            name += f", {len(options.not_ids)} unlike"
        return self._answer(generation, _Target(name, v, exclude, doubt=doubt, region=True), options)

    def _answer(self, generation: "Generation", target: "_Target", options: QueryOptions) -> QueryAnswer:
        """Answer with the target's code (a new code enters the graph's space first), steered by the
        finding sliders; with a filter, among the images that pass it (min(k, passing) of them). The
        hits carry no stored record yet (`_settled` adds them)."""
        retriever = generation.retriever
        code = self.graph.in_graph_space(generation.meta, target.code) if target.new else target.code
        scan = retriever.first_pass(code) if target.upload else None  # the duplicate check's, and the answer's
        duplicate = None if scan is None else retriever.duplicate_of(code, scan)
        doubt = target.doubt
        if duplicate is not None:  # the archived film itself: answered as that image
            code, doubt, scan = retriever.code_of(duplicate), None, None
            target = _Target(target.name, code, target.exclude | {duplicate})
        elif target.new and doubt is None:
            doubt = retriever.doubt(code)
        if options.concepts:
            code, scan = steer(code, self.directions(generation.meta), options.concepts), None
        t1 = time.perf_counter()
        where = options.filter
        allowed = None
        if where is not None and not where.empty():
            allowed = passing(generation.facets, where, retriever.graph.community)
        question = Question(options.k, options.method, options.strict, target.exclude, allowed)
        scan = retriever.first_pass(code) if scan is None else scan  # its count of exact cosines is reported
        hits = retriever.query(code, question, scan)
        t2 = time.perf_counter()
        meta = generation.meta
        answer = QueryAnswer(
            query=target.name, method=options.method.value, k=options.k, strict=options.strict,
            excluded=len(target.exclude), generation=meta.generation, communityGeneration=meta.communityGeneration,
            query_ms=round((t2 - t1) * 1e3, 3), total_ms=0.0, hits=hits,
            passing=None if allowed is None else int(allowed.sum()), familiar=doubt is None, unfamiliar=doubt,
            duplicate_of=duplicate, region=options.region if target.region else None,
        )
        answer._rechecks = scan.computed
        return answer

    def _settled(self, answer: "Callable[[Generation], QueryAnswer]", t0: float | None = None) -> QueryAnswer:
        """``answer`` computed on the generation open in memory, then GraphMeta and the hits' records read
        together in one statement: when GraphMeta still names that generation, the answer stands with its
        hits' records; when it names another, the answer is computed again on that one (at most
        GENERATION_RETRIES times, then NotReadyError). A refusal (an unknown id, a code of another width)
        from a generation that may be stale is checked against GraphMeta first, and retried if it moved."""
        t0 = time.perf_counter() if t0 is None else t0
        generation, fresh = self.graph.opened, False
        if generation is None:
            generation, fresh = self.graph.current(), True
        for _ in range(GENERATION_RETRIES + 1):
            try:
                got = answer(generation)
            except (NotFoundError, InputError, ConfigError) as e:
                if fresh or isinstance(e, NotReadyError):
                    raise
                stored = self.graph.stored_meta()
                if stored is not None and state_key(stored) == state_key(generation.meta):
                    raise
                generation, fresh = self.graph.follow(stored), True
                continue
            stored, records = self.graph.meta_and_records([h.image_id for h in got.hits])
            if stored is not None and state_key(stored) == state_key(generation.meta):
                stored.require_queryable()
                hits = [h.model_copy(update=_shown(records[h.image_id])) if h.image_id in records else h
                        for h in got.hits]
                return got.model_copy(update={"hits": hits, "total_ms": round((time.perf_counter() - t0) * 1e3, 3)})
            generation, fresh = self.graph.follow(stored), True
        raise NotReadyError(f"the graph changed {GENERATION_RETRIES + 1} times while this query was answered "
                            "(writes are running); try again in a moment")

    def explain(self, query: str, hit: str, files: bool = False,
                region: Box | None = None) -> "tuple[SimilarityMaps, Path, Path]":
        """Where two images are alike (cxrneo.similarity) and their files: stored ids, whose files are
        read only under the image folder, or (``files``: the CLI) image files on this machine; with
        `region`, where the query's region and the hit are alike (the region's code as a region query's)."""
        if self._checkpoint is None:
            raise ConfigError("similarity maps need the checkpoint whose codes the graph holds (--checkpoint)")
        paths = [Path(t) if files and Path(t).is_file() else self.image_file(t) for t in (query, hit)]
        return self.encoder().explain(paths[0], paths[1], region), paths[0], paths[1]

    def image_file(self, image_id: str) -> Path:
        """The file of a stored image: inside the image folder, else (an image from a PACS, with a PACS
        given) retrieved over WADO-RS into the service's bounded instance cache (cxrneo.pacs.cache);
        NotFoundError otherwise, InputError for a UID that is not a DICOM UID."""
        record = self.graph.image(image_id)
        try:
            return self.files.locate(image_id, str(record.get("path") or ""))
        except NotFoundError:
            study, series = str(record.get("studyUid") or ""), str(record.get("seriesUid") or "")
            if self.instances is None or not study or not series:
                raise
        from cxrneo.pacs.dicomweb import Instance

        return self.instances.file(Instance(study, series, image_id).checked("bad"))

    def findings(self) -> list[str]:
        """The finding names filters accept (the graph's label set); none while the graph cannot be read."""
        try:
            return list(self.graph.current().facets.findings)
        except CxrneoError:
            return []

    def patients(self, ids: Iterable[str]) -> list[str]:
        """The patients of stored images (what the audit trail records), from the generation open now: the
        request that answered opened it, so no second round trip; unknown ones left out."""
        try:
            patient_of = (self.graph.opened or self.graph.current()).patient_of
        except CxrneoError:  # no generation can open: the images are unknown to it too
            return []
        return [p for i in ids if (p := patient_of.get(i))]

    def image(self, image_id: str) -> dict[str, Any]:
        return self.graph.image(image_id)

    def pixels(self, image_id: str, size: int) -> bytes:
        """A stored image as a display PNG, longest side ``size`` (see cxrneo.service.pixels)."""
        check_size(size)
        return self.files.png_of(image_id, self.image_file(image_id), size)

    def subgraph(self, ids: list[str]) -> dict[str, Any]:
        """Stored images among ``ids``, their communities and the SIMILAR edges between them."""
        return self.graph.subgraph(ids)

    def caches(self) -> dict[str, CacheUse]:
        """The use of the service's caches: rendered PNGs, PACS instances (with --dicomweb) and those of
        the generation open now (no round trip to Neo4j)."""
        found = {"image_png": self.files.use()}
        if self.instances is not None:
            found["pacs_instances"] = self.instances.use()
        opened = self.graph.opened
        return found | (opened.retriever.caches() if opened is not None else {})

    @property
    def image_queries(self) -> bool:
        """Whether image files can be queried (a checkpoint was given)."""
        return self._checkpoint is not None

    def health(self) -> dict[str, Any]:
        """Neo4j reachable, the graph's generations, the checkpoint's hash."""
        try:
            meta = self.graph.stored_meta()
        except DatabaseError as e:
            return {"status": "unavailable", "neo4j": False, "error": str(e)}
        if meta is None:
            return {"status": "empty", "neo4j": True, "generation": None, "communityGeneration": None,
                    "checkpoint_sha256": self.checkpoint_sha256}
        ready = True
        reason = ""
        try:
            meta.require_queryable()
        except ConfigError as e:
            ready, reason = False, str(e)
        doc: dict[str, Any] = {
            "status": "ok" if ready else "not ready", "neo4j": True, "generation": meta.generation,
            "communityGeneration": meta.communityGeneration, "images": meta.nodes, "edges": meta.edges,
            "threshold": meta.threshold, "codes_checkpoint_sha256": meta.codesSha256,
            "codes_transform_sha256": meta.transformSha256,
            "checkpoint_sha256": self.checkpoint_sha256, "scan": self.graph.precision,
            "scan_rechecks": self.graph.scan_rechecks, "cpu": cpu.model(),
        }
        if reason:
            doc["error"] = reason
        return doc


def _kernel(precision: str) -> Callable[[Loaded], Chosen]:
    """What chooses the first pass over a generation's codes (cxrneo.retrieval.fastest); torch only where
    a bfloat16 pass is forced or this CPU may do bfloat16 in hardware."""

    def make(loaded: Loaded) -> Chosen:
        extra: dict[str, Callable[[], Kernel]] = {}
        if precision == "bfloat16" or (precision == "auto" and cpu.may_do_bfloat16()
                                       and loaded.codes.shape[0] >= LEAST_ROWS):
            from cxrneo.embed.kernels import candidates

            extra = candidates(loaded.codes, precision)
        chosen = choose(loaded, precision, extra)
        log.info("%s on %s", chosen.summary(), cpu.model())
        return chosen

    return make


def _same_codes(encoder: "Encoder", meta: "GraphMeta | None") -> None:
    """Refuse an encoder whose checkpoint did not make the codes of `meta`'s graph (ConfigError)."""
    if meta is not None and meta.codesSha256 and meta.codesSha256 != encoder.sha256:
        raise ConfigError(f"{encoder.path} is not the checkpoint whose codes the graph holds")


def _shown(record: ImageRecord) -> dict[str, Any]:
    """The fields of a stored record that a hit carries for display."""
    from cxrneo.pacs.uid import is_uid

    study, series = is_uid(record.study_uid), is_uid(record.series_uid)  # a viewer link only from real UIDs
    return {"labels": record.labels, "patient_id": record.patient_id, "view": record.view, "sex": record.sex,
            "age": record.age, "study_uid": record.study_uid if study else None,
            "series_uid": record.series_uid if series else None}


