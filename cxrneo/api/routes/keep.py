"""POST /keep: similar cases kept in the PACS as a key object (cxrneo.pacs.keeping), by a caller whose role
is granted the keep permission, on a service started with `--dicomweb URL --pacs-write`; audited with
the images and patients it references and the document it stored."""

from fastapi import APIRouter, Depends

from cxrneo.access.identity import Identity, Permission
from cxrneo.api.answers import errors
from cxrneo.api.deps import Archive, Audit, Caller, Work, Writer, permit
from cxrneo.api.notes import Note
from cxrneo.api.routes.info import version
from cxrneo.pacs.dicomweb import DicomWeb
from cxrneo.pacs.keeping import Kept, keep
from cxrneo.pacs.keyobject import KeepRequest
from cxrneo.service.searcher import Searcher

router = APIRouter(dependencies=[Depends(permit(Permission.KEEP))])


@router.post("/keep", responses=errors(400, 401, 403, 404, 422, 502, 503))
async def keep_cases(req: KeepRequest, searcher: Archive, pacs: Writer, work: Work, note: Audit, who: Caller) -> Kept:
    """Store a Key Object Selection document in the query's study (a series of its own) referencing the
    query and the chosen hits, titled (CID 7010) and with the note, the caller as its observer. Only
    images that came from the PACS can be kept (400 naming the first other one); keeping the same cases
    again stores nothing (`stored` false); a PACS that refuses is a 502."""
    note.query = req.query
    return await work.run(_keep, searcher, pacs, req, who, note)


def _keep(searcher: Searcher, pacs: DicomWeb, req: KeepRequest, who: Identity, note: Note) -> Kept:
    ids = [req.query, *(h for h in req.hits if h != req.query)]
    note.saw(ids, searcher.patients(ids))
    kept = keep(pacs, searcher.image, req, who.name, f"cxrneo {version()}")
    held = "" if kept.stored else " (held already)"
    note.wrote = f"key object {kept.sop_uid} ({kept.title}) in study {kept.study_uid}{held}"
    return kept
