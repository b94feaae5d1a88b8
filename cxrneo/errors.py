"""The one error root of cxrneo; the CLI turns these into one clear line."""


class CxrneoError(Exception):
    """Base of every error cxrneo raises on purpose."""


class ConfigError(CxrneoError):
    """Settings or arguments that cannot work."""


class NotReadyError(ConfigError):
    """The stored graph cannot answer now: never built, being written, interrupted, or communities stale."""


class InputError(CxrneoError):
    """Bad input data: an unreadable image, a malformed codes or label file."""


class TooLargeError(InputError):
    """An input above a budget (pixels, bytes, inflated size), refused before it is decoded."""


class AuthError(CxrneoError):
    """A credential that does not prove who is asking: unknown, revoked, expired, badly signed."""


class DatabaseError(CxrneoError):
    """Neo4j is unreachable, refuses our credentials, or a query failed."""


class ServerError(CxrneoError):
    """The local Neo4j server could not be assembled, started or stopped."""


class NotFoundError(CxrneoError):
    """An image id, community or file that does not exist."""


class ServiceError(CxrneoError):
    """The retrieval service (`cxrneo serve`) could not be reached or refused a request."""


class PacsError(ServiceError):
    """The PACS did not take what cxrneo asked it to store (STOW-RS): it refused, failed, or cannot be
    reached (a bad gateway to the caller of the service)."""


class BusyError(ServiceError):
    """The service cannot take this work now (its heavy-work queue is full, or the request's deadline
    passed); the client may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
