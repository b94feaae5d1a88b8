"""The admin's routes: GET /users (who may use the service), POST /users/{name}/revoke, and GET /audit
(who saw which patient). Keys are made on the service's machine (`cxrneo users add`), never sent."""

from collections import deque
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam

from cxrneo.access.identity import Role
from cxrneo.access.users import User, UserStore
from cxrneo.api.answers import errors
from cxrneo.api.deps import need

router = APIRouter(dependencies=[Depends(need(Role.ADMIN))])
ADMIN = errors(401, 403, 404, 422)
MAX_ENTRIES = 1000


def _users(request: Request) -> UserStore:
    users = getattr(request.app.state.access, "users", None)
    if not isinstance(users, UserStore):
        raise HTTPException(404, "this service has no user list (serve keeps it beside the database)")
    return users


@router.get("/users", responses=ADMIN)
def users(store: Annotated[UserStore, Depends(_users)]) -> dict[str, Any]:
    """Every user: name, role, when made and rotated, revoked or not (no keys)."""
    return {"users": [_shown(u) for u in store.list()]}


def _shown(user: User) -> dict[str, Any]:
    def when(t: datetime | None) -> str | None:
        return t.isoformat() if t else None
    return {"name": user.name, "role": user.role.label, "created": when(user.created), "rotated": when(user.rotated),
            "revoked": when(user.revoked)}


@router.post("/users/{name}/revoke", responses=ADMIN)
def revoke(name: Annotated[str, PathParam(max_length=64)], store: Annotated[UserStore, Depends(_users)]) -> dict[str, str]:
    """Revoke a user's key: refused from the next request on."""
    store.revoke(name)
    return {"revoked": name}


@router.get("/audit", responses=ADMIN)
def audit(
    request: Request,
    user: Annotated[str | None, Query(max_length=200)] = None,
    patient: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = 100,
) -> dict[str, Any]:
    """The newest ``limit`` audit entries that match (by user, by patient, since a time)."""
    from cxrneo.access.audit import read

    path = request.app.state.audit_file
    if path is None:
        raise HTTPException(404, "this service keeps no audit trail")
    return {"entries": list(deque(read(path, user=user, patient=patient, since=since), maxlen=limit))}
