"""A small client of `cxrneo serve` (the standard library and the request models): what `cxrneo query --server`
uses."""

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cxrneo.errors import ConfigError, NotFoundError, ServiceError
from cxrneo.service.request import QueryOptions, to_form


class Client:
    """Talks JSON to one service URL, with an optional bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"server URL must be http(s)://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def query(self, targets: str | list[str], options: QueryOptions) -> dict[str, Any]:
        """Stored ids first (several: more like these); image files on this machine are uploaded when
        the ids are unknown."""
        targets = [targets] if isinstance(targets, str) else targets
        body = {"ids": targets, **options.model_dump(mode="json", exclude_defaults=True)}
        try:
            return self._call("POST", "/query", json.dumps(body).encode(), "application/json")
        except NotFoundError:
            if not all(Path(t).is_file() for t in targets):
                raise
        return self.query_image([Path(t) for t in targets], options)

    def query_image(self, paths: Path | list[Path], options: QueryOptions) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        fields = to_form(options)
        chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode()
                  for n, v in fields.items()]
        for path in [paths] if isinstance(paths, Path) else paths:
            try:
                data = path.read_bytes()
            except OSError as e:
                raise NotFoundError(f"{path}: cannot read ({e.strerror})") from None
            chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quote(path.name)}"\r\n'
                          "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return self._call("POST", "/query/image", b"".join(chunks), f"multipart/form-data; boundary={boundary}")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", None, None)

    def _call(self, verb: str, path: str, body: bytes | None, kind: str | None) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, data=body, method=verb)
        if kind:
            req.add_header("Content-Type", kind)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                doc: dict[str, Any] = json.loads(resp.read())
                return doc
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", e.reason)
            except (ValueError, AttributeError):
                message = e.reason
            if e.code == 404:
                raise NotFoundError(str(message)) from None
            if e.code == 503:
                raise ServiceError(str(message)) from None
            if 400 <= e.code < 500:
                raise ConfigError(f"{message} (HTTP {e.code} from {self.url})") from None
            raise ServiceError(f"{self.url} answered HTTP {e.code}: {message}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise ServiceError(f"cannot reach the cxrneo service at {self.url} ({reason})") from None
