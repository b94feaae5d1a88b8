"""Who a request is from: one bearer credential checked against the ways this service accepts them.

* an API key of `cxrneo users` (``cxrneo_<keyid>_<secret>``), with the user's role;
* the single ``CXRNEO_API_TOKEN`` of older set-ups, as one admin key named "token";
* a JWT of the hospital's identity provider (`serve --oidc-issuer`), with the role its claim names.

With none of them configured, a service bound to loopback serves its own machine as the admin "local"
(it is the operator's); bound wider it refuses everyone (and `cxrneo serve` refuses to start so).
"""

import hmac
from dataclasses import dataclass
from typing import Protocol

from cxrneo.access.identity import Identity, Role
from cxrneo.errors import AuthError

KEY_PREFIX = "cxrneo_"
LOCAL = Identity("local", Role.ADMIN, "local")


class Keys(Protocol):
    """The API keys of named users (cxrneo.access.users.UserStore)."""

    def check(self, key: str) -> Identity | None: ...

    def has_users(self) -> bool: ...


class Tokens(Protocol):
    """A verifier of single sign-on tokens (cxrneo.access.oidc.OidcVerifier)."""

    def verify(self, token: str) -> Identity: ...


@dataclass(frozen=True)
class Authenticator:
    """The credentials this service accepts; ``loopback``: it is bound to loopback only."""

    token: str | None = None
    users: Keys | None = None
    oidc: Tokens | None = None
    loopback: bool = True

    def configured(self) -> bool:
        """Some authentication is set up (read per request: the first `cxrneo users add` switches it on)."""
        return bool(self.token) or self.oidc is not None or (self.users is not None and self.users.has_users())

    def identify(self, authorization: str) -> Identity:
        """The caller of a request with this Authorization header, or AuthError with the reason (may block
        on the identity provider the first time a signing key is seen: call it from a worker thread)."""
        if not self.configured():
            if self.loopback:
                return LOCAL
            raise AuthError("no authentication is configured on a service bound beyond loopback")
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthError("missing bearer credential (Authorization: Bearer <API key or token>)")
        if credential.startswith(KEY_PREFIX) and self.users is not None:
            found = self.users.check(credential)
            if found is None:
                raise AuthError("unknown or revoked API key")
            return found
        if self.token and hmac.compare_digest(credential.encode(), self.token.encode()):
            return Identity("token", Role.ADMIN, "token")
        if self.oidc is not None and credential.count(".") == 2:
            return self.oidc.verify(credential)
        raise AuthError("missing or wrong bearer credential")
