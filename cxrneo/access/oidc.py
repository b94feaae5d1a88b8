"""Single sign-on: the identity a bearer token (a JWT of an OpenID Connect provider) proves.

The token is verified with PyJWT against the provider's published keys (cxrneo/access/jwks.py):
only asymmetric algorithms are accepted, and the token's ``alg`` must fit the key it names, so an
``alg: none`` token or an HS256 token "signed" with the provider's public key (the classic
algorithm-confusion attack) is refused. The token must carry exp, iat (or nbf), iss, aud and sub;
exp, nbf, iss and aud are checked with ``leeway`` seconds of clock skew. The role comes from the
claim ``role_claim`` (a string or a list; a dotted path such as ``realm_access.roles`` reaches into
nested claims, as Keycloak puts them): the highest of monitor, viewer, curator, admin found there.
``OidcVerifier.verify`` is thread-safe (the service calls it from worker threads).
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from cxrneo.access.identity import Identity, Role
from cxrneo.access.jwks import KeySource
from cxrneo.errors import AuthError

# Each accepted algorithm and the key type (and curves) its key must have.
ALGORITHMS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{f"{p}{n}": ("RSA", ()) for p in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", ("P-256",)),
    "ES384": ("EC", ("P-384",)),
    "ES512": ("EC", ("P-521",)),
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
}
MAX_TOKEN_CHARS = 16 << 10

_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "disallowed algorithm"),
]


class OidcVerifier:
    """Turns a bearer token of the provider ``issuer``, meant for ``audience``, into an Identity.

    ``jwks_lifetime`` and ``refetch_interval`` bound how long keys are kept and how often they may be
    fetched (see KeySource); ``clock`` is the monotonic clock those use (tests move it on).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        role_claim: str = "roles",
        ca_bundle: Path | None = None,
        leeway: int = 30,
        *,
        jwks_lifetime: float = 300.0,
        refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer, self.audience, self.role_claim, self.leeway = issuer, audience, role_claim, leeway
        self._keys = KeySource(issuer, ca_bundle, jwks_lifetime, refetch_interval, clock)

    def verify(self, token: str) -> Identity:
        """The identity ``token`` proves (kind "oidc"); AuthError with a one-line reason otherwise."""
        claims = self._claims(token)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("token's sub claim is not a non-empty string")
        username = claims.get("preferred_username")
        name = username if isinstance(username, str) and username else sub
        return Identity(name=name, role=self._role(claims), kind="oidc")

    def _claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, algorithm, times, issuer and audience are checked."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError("malformed token: empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token: not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise AuthError(f"disallowed algorithm {str(alg)[:32]!r}: only asymmetric signatures are accepted")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("malformed token: kid is not a string")
        key = self._key(self._keys.key(kid), alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.MissingRequiredClaimError as e:
            raise AuthError(f"token lacks the {e.claim} claim") from None
        except jwt.PyJWTError as e:
            reason = next((text for kind, text in _REASONS if isinstance(e, kind)), "invalid token")
            raise AuthError(f"{reason}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if "iat" not in claims and "nbf" not in claims:
            raise AuthError("token lacks both the iat and the nbf claim")
        return claims

    @staticmethod
    def _key(jwk: dict[str, Any], alg: str) -> jwt.PyJWK:
        """The published key as PyJWT's key for ``alg``, if its type (and curve, and own alg) fit ``alg``."""
        kty, curves = ALGORITHMS[alg]
        if jwk.get("kty") != kty or (curves and jwk.get("crv") not in curves):
            raise AuthError(f"disallowed algorithm {alg!r} for the provider's {jwk.get('kty')} key")
        if jwk.get("alg") not in (None, alg):
            raise AuthError(f"disallowed algorithm {alg!r}: the provider's key is for {str(jwk.get('alg'))[:32]!r}")
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as e:
            raise AuthError(f"the identity provider's key is unusable: {e}") from None

    def _role(self, claims: dict[str, Any]) -> Role:
        """The highest cxrneo role named in the role claim; AuthError when it names none."""
        value: Any = claims.get(self.role_claim)
        if value is None and "." in self.role_claim:  # a dotted path into nested claims
            value = claims
            for part in self.role_claim.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        roles = []
        for name in names:
            if isinstance(name, str):
                try:
                    roles.append(Role.parse(name))
                except ValueError:
                    continue
        if not roles:
            raise AuthError(f"token carries no cxrneo role in claim {self.role_claim!r}")
        return max(roles)
