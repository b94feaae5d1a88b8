"""A real, tiny OpenID Connect identity provider for tests: an HTTP server on the loopback that
serves a discovery document and a key set (JWKS) of keys it generates at start, and signs tokens.

    with OidcIssuer() as issuer:
        token = issuer.sign(issuer.claims(roles=["viewer"]))

It counts the fetches (``discovery_fetches``, ``jwks_fetches``), can rotate its signing key (``rotate``), can name
another issuer in its discovery document (``discovery_issuer``), and can sign with a key it never
published (``forge``).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.certs import server_context

AUDIENCE = "cxrneo"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: PrivateKey, kid: str, alg: str) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class OidcIssuer:
    """The provider at ``self.issuer`` (http://127.0.0.1:PORT/realms/cxrneo) with an RSA key "rsa-1"
    (RS256, the default), an EC key "ec-1" (ES256) and an Ed25519 key "ed-1" (EdDSA). Given
    ``tls_dir`` it serves https (https://127.0.0.1:PORT/...) with a self-signed certificate whose
    CA bundle is ``tls_dir/cert.pem``."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[PrivateKey, str]] = {
            "rsa-1": (_rsa(), "RS256"),
            "ec-1": (ec.generate_private_key(ec.SECP256R1()), "ES256"),
            "ed-1": (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        }
        self.default_kid = "rsa-1"
        self._rotations = 0
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.discovery_issuer: str | None = None  # what the discovery document names; None: self.issuer
        self.discovery_extra: dict[str, Any] = {}  # more members for the discovery document
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        scheme = "http"
        if tls_dir is not None:
            self._server.socket = server_context(tls_dir)[0].wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.issuer = f"{scheme}://127.0.0.1:{self._server.server_address[1]}/realms/cxrneo"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self) -> "OidcIssuer":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [_jwk(key, kid, alg) for kid, (key, alg) in self._keys.items()]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            **self.discovery_extra,
        }

    def claims(self, **over: Any) -> dict[str, Any]:
        """Claims that verify (for alice, a viewer, valid for an hour), with ``over`` replacing some;
        a value of None drops that claim."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.issuer, "aud": AUDIENCE, "sub": "user-0001", "preferred_username": "alice",
            "iat": now, "exp": now + 3600, "roles": ["viewer"],
        }
        base.update(over)
        return {k: v for k, v in base.items() if v is not None}

    def sign(self, claims: dict[str, Any], kid: str | None = None, alg: str | None = None) -> str:
        """A token of ``claims`` signed with the published key ``kid`` (default: the current one)."""
        with self._lock:
            key, key_alg = self._keys[kid or self.default_kid]
        return jwt.encode(claims, key, algorithm=alg or key_alg, headers={"kid": kid or self.default_kid})

    def forge(self, claims: dict[str, Any], kid: str) -> str:
        """A token naming ``kid`` but signed with a fresh RSA key the issuer never published."""
        return jwt.encode(claims, _rsa(), algorithm="RS256", headers={"kid": kid})

    def public_pem(self, kid: str = "rsa-1") -> bytes:
        with self._lock:
            key = self._keys[kid][0]
        return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def rotate(self, drop_old: bool = False) -> str:
        """Publish a new RSA key and sign with it from now on (dropping the old one if asked); its kid."""
        with self._lock:
            self._rotations += 1
            kid = f"rsa-{self._rotations + 1}"
            if drop_old:
                del self._keys[self.default_kid]
            self._keys[kid] = (_rsa(), "RS256")
            self.default_kid = kid
        return kid

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                path = issuer.issuer.split("/", 3)[3]
                if self.path == f"/{path}/.well-known/openid-configuration":
                    with issuer._lock:
                        issuer.discovery_fetches += 1
                    body = issuer.discovery()
                elif self.path == f"/{path}/protocol/openid-connect/certs":
                    with issuer._lock:
                        issuer.jwks_fetches += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                return

        return Handler
