"""Redirects of a PACS answer, followed without leaking its credentials.

urllib's own redirect handler copies every header of a request, the Authorization header included,
to wherever a server redirects it (another host, or from https to plain http). The rule here:

- a redirect within the same origin (scheme, host and port alike) keeps the request's headers;
- a redirect to another origin is followed with only the harmless headers (Accept, User-Agent):
  no Authorization, no cookie, no other credential ever reaches a host the user did not name
  (e.g. a PACS that sends WADO-RS downloads to a pre-signed storage address still works);
- a redirect from https to http is refused, whatever the host, and so is one to any scheme other
  than http(s): the PACS's answers (patient data) never travel in the clear once asked over TLS.
"""

import urllib.request
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from cxrneo.errors import ServiceError

SAFE_HEADERS = frozenset({"accept", "user-agent"})  # what a request keeps when it leaves its origin
_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _PORTS.get(scheme, 0)
    except ValueError:
        port = -1  # a malformed port: an origin of its own
    return scheme, (parts.hostname or "").lower(), port


def keeps_credentials(old_url: str, new_url: str) -> bool:
    """Whether a redirect from ``old_url`` to ``new_url`` may carry the request's credentials (same
    origin: True) or must go without them (another origin: False); ServiceError in one line when
    it is not followed at all (https to http, or a scheme other than http(s))."""
    old, new = origin(old_url), origin(new_url)
    if new[0] not in _PORTS or not new[1]:
        raise ServiceError(f"the PACS redirected to {_shown(new_url)}: only http(s) addresses are followed")
    if old[0] == "https" and new[0] == "http":
        raise ServiceError(f"the PACS redirected from https to plain http ({_shown(new_url)}): refused, "
                           "its answers would travel unencrypted")
    return old == new


def _shown(url: str) -> str:
    """A URL as named in a message: scheme, host and port only (no path, query or user info)."""
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if host else repr(url[:60])


class CredentialSafeRedirect(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handler under the rule above."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        try:
            keep = keeps_credentials(req.full_url, newurl)
        except ServiceError:
            fp.close()  # the redirect's own answer, not read further
            raise
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and not keep:
            for name in list(new.headers):
                if name.lower() not in SAFE_HEADERS:
                    del new.headers[name]
            new.unredirected_hdrs.clear()
        return new


def opener(handlers: list[urllib.request.BaseHandler]) -> urllib.request.OpenerDirector:
    """An opener with the given handlers (e.g. HTTPS with a CA bundle) and the redirect rule above."""
    return urllib.request.build_opener(*handlers, CredentialSafeRedirect())
