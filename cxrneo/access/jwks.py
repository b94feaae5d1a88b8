"""The signing keys of an OpenID Connect identity provider, fetched from it and kept for a while.

The provider's discovery document (``{issuer}/.well-known/openid-configuration``) names its key set
(``jwks_uri``); both are fetched on first use, not at start, so the service starts while the provider
is down. The key set is kept for ``lifetime`` seconds and fetched again at once when a token names a
key it does not hold (the provider rotated its keys), but never twice within ``min_interval``
seconds, so a flood of tokens with made-up key ids (or a provider that is down) cannot make the
service hammer the provider. When a due fetch fails, tokens are refused (with that one-line error,
repeated without a new try for ``min_interval`` seconds) rather than checked against keys the
provider may have withdrawn. Fetches are plain GETs over http(s) only, https unless the host is the
loopback, with a timeout, a size cap and no redirects (and no proxies). Every method is thread-safe:
one lock guards the cache, held across a fetch so that concurrent requests fetch once.
"""

import ipaddress
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cxrneo.errors import AuthError, ConfigError

TIMEOUT_S = 5.0  # per connection attempt and per read; a whole fetch at most twice this
MAX_BYTES = 1 << 20  # a discovery document or key set larger than this is refused
CHUNK = 64 << 10


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """``url`` if it is http(s) with a host, and https unless that host is the loopback; ConfigError otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"{what} {url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{what} {url!r} must be an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError(f"{what} {url!r} must use https (plain http only on the loopback)")
    return url


class KeySource:
    """The provider's published signing keys (raw JWK dicts by ``kid``), fetched lazily and cached."""

    def __init__(
        self,
        issuer: str,
        ca_bundle: Path | None = None,
        lifetime: float = 300.0,
        min_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = check_url(issuer, "OIDC issuer")
        if ca_bundle is not None and not ca_bundle.is_file():
            raise ConfigError(f"CA bundle {ca_bundle} is not a readable file")
        tls = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        # Only http and https handlers: no file:, ftp:, data:, no proxies, no redirects followed.
        self._opener = urllib.request.OpenerDirector()
        self._opener.add_handler(urllib.request.HTTPHandler())
        self._opener.add_handler(urllib.request.HTTPSHandler(context=tls))
        self._lifetime, self._min_interval, self._clock = lifetime, min_interval, clock
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # when the key set now held arrived
        self._tried_at: float | None = None  # when a fetch was last attempted (success or not)
        self._failure: AuthError | None = None  # the last attempt's error, repeated until min_interval passes

    def key(self, kid: str | None) -> dict[str, Any]:
        """The published JWK of ``kid`` (or the only key when the token names none); AuthError if there is none."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._lifetime
            if stale or not self._has(kid):
                self._refresh(now)
            return self._pick(kid)

    def _has(self, kid: str | None) -> bool:
        return (kid in self._keys) if kid is not None else len(self._keys) == 1

    def _pick(self, kid: str | None) -> dict[str, Any]:
        if kid is None:
            if len(self._keys) != 1:
                raise AuthError("token names no key (kid) and the identity provider publishes several")
            return next(iter(self._keys.values()))
        found = self._keys.get(kid)
        if found is None:
            raise AuthError(f"unknown key {kid[:64]!r}: not published by the identity provider")
        return found

    def _refresh(self, now: float) -> None:
        """Fetch the key set again unless a fetch was tried within ``min_interval`` seconds (then the
        last try's error is repeated, or the keys held are kept)."""
        if self._tried_at is not None and now - self._tried_at < self._min_interval:
            if self._failure is not None:
                raise self._failure
            return
        self._tried_at = now
        try:
            keys = self._fetch_keys()
        except AuthError as e:
            self._failure = e
            raise
        self._keys, self._fetched_at, self._failure = keys, now, None

    def _fetch_keys(self) -> dict[str, dict[str, Any]]:
        if self._jwks_uri is None:
            self._jwks_uri = self._discover()
        body = self._get_json(self._jwks_uri, "key set")
        entries = body.get("keys")
        if not isinstance(entries, list):
            raise AuthError("identity provider sent a key set without a 'keys' list")
        keys: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get("use", "sig") == "sig" and isinstance(entry.get("kty"), str):
                kid = entry.get("kid")
                keys[kid if isinstance(kid, str) else ""] = entry
        return keys

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "discovery document")
        if doc.get("issuer") != self.issuer:
            raise AuthError(f"identity provider names itself {str(doc.get('issuer'))[:200]!r}, not {self.issuer!r}")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise AuthError("identity provider's discovery document has no jwks_uri")
        try:
            return check_url(jwks_uri, "jwks_uri")
        except ConfigError as e:
            raise AuthError(f"identity provider's {e}") from None

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        """GET ``url`` as a JSON object, within the timeout and size cap; AuthError (one line) otherwise."""
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        deadline = time.monotonic() + 2 * TIMEOUT_S
        try:
            with self._opener.open(request, timeout=TIMEOUT_S) as response:
                if response.status != 200:
                    raise AuthError(f"identity provider answered HTTP {response.status} for its {what} ({url})")
                data = bytearray()
                while chunk := response.read(CHUNK):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise AuthError(f"identity provider's {what} is larger than {MAX_BYTES} bytes ({url})")
                    if time.monotonic() > deadline:
                        raise AuthError(f"identity provider too slow sending its {what} ({url})")
        except (OSError, ValueError) as e:  # URLError, timeouts, TLS errors, refused connections, bad URLs
            reason = str(getattr(e, "reason", e)).replace("\n", " ")
            raise AuthError(f"identity provider unreachable: {url}: {reason}") from None
        try:
            body = json.loads(bytes(data))
        except (ValueError, UnicodeDecodeError):
            raise AuthError(f"identity provider's {what} is not JSON ({url})") from None
        if not isinstance(body, dict):
            raise AuthError(f"identity provider's {what} is not a JSON object ({url})")
        return body
