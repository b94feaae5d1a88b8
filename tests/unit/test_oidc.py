"""Single sign-on bearer tokens, verified against a real (tiny, loopback) identity provider."""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxrneo.access.identity import Identity, Role
from cxrneo.access.oidc import OidcVerifier
from cxrneo.errors import AuthError, ConfigError
from tests.oidc_issuer import AUDIENCE, OidcIssuer


class Clock:
    """A monotonic clock the test moves on by hand (the verifier's key cache reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(issuer: OidcIssuer, clock: Clock) -> OidcVerifier:
    return OidcVerifier(issuer.issuer, AUDIENCE, clock=clock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _refused(verifier: OidcVerifier, token: str, reason: str) -> str:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    message = str(caught.value)
    assert reason in message and "\n" not in message, message
    return message


def test_a_good_token_names_the_user_and_role(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    assert verifier.verify(issuer.sign(issuer.claims())) == Identity("alice", Role.VIEWER, "oidc")
    token = issuer.sign(issuer.claims(preferred_username=None, roles=["offline_access", "admin", "curator"]))
    assert verifier.verify(token) == Identity("user-0001", Role.ADMIN, "oidc")


def test_ec_and_eddsa_tokens_verify(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    assert verifier.verify(issuer.sign(issuer.claims(roles="curator"), kid="ec-1")).role is Role.CURATOR
    assert verifier.verify(issuer.sign(issuer.claims(roles="admin"), kid="ed-1")).role is Role.ADMIN


def test_expired_and_not_yet_valid_tokens_are_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    now = int(time.time())
    _refused(verifier, issuer.sign(issuer.claims(iat=now - 7200, exp=now - 3600)), "token expired")
    _refused(verifier, issuer.sign(issuer.claims(nbf=now + 3600)), "token not yet valid")
    _refused(verifier, issuer.sign(issuer.claims(iat=now + 3600)), "token not yet valid")
    # within the leeway (30 s) a just-expired token still passes: clocks drift
    assert verifier.verify(issuer.sign(issuer.claims(exp=now - 5))).name == "alice"


def test_wrong_audience_and_issuer_are_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    _refused(verifier, issuer.sign(issuer.claims(aud="another-app")), "wrong audience")
    _refused(verifier, issuer.sign(issuer.claims(iss=issuer.issuer + "-evil")), "wrong issuer")
    assert verifier.verify(issuer.sign(issuer.claims(aud=["another-app", AUDIENCE]))).name == "alice"


def test_required_claims(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    for claim in ("exp", "iss", "aud", "sub"):
        _refused(verifier, issuer.sign(issuer.claims(**{claim: None})), f"lacks the {claim} claim")
    _refused(verifier, issuer.sign(issuer.claims(iat=None)), "lacks both the iat and the nbf claim")
    assert verifier.verify(issuer.sign(issuer.claims(iat=None, nbf=int(time.time())))).name == "alice"


def test_alg_none_is_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, issuer.claims(roles=["admin"])) + "."
    _refused(verifier, token, "disallowed algorithm 'none'")


def test_hs256_with_the_public_key_as_secret_is_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    """The algorithm-confusion attack: an HMAC 'signed' with the provider's public key, which anyone has."""
    signed = _unsigned({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, issuer.claims(roles=["admin"]))
    mac = hmac.new(issuer.public_pem("rsa-1"), signed.encode(), hashlib.sha256).digest()
    _refused(verifier, f"{signed}.{_b64(mac)}", "disallowed algorithm 'HS256'")


def test_the_alg_must_fit_the_key(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    # a PS256 signature by the RSA key published for RS256, and an RS256 token naming the EC key
    _refused(verifier, issuer.sign(issuer.claims(), kid="rsa-1", alg="PS256"), "the provider's key is for 'RS256'")
    forged = issuer.forge(issuer.claims(), kid="ec-1")
    _refused(verifier, forged, "disallowed algorithm 'RS256' for the provider's EC key")


def test_keys_the_issuer_never_published_are_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    _refused(verifier, issuer.forge(issuer.claims(), kid="rsa-9"), "unknown key 'rsa-9'")
    _refused(verifier, issuer.forge(issuer.claims(), kid="rsa-1"), "bad signature")
    _refused(verifier, "not.a.jwt", "malformed token")


def test_a_rotated_key_is_fetched_without_a_restart(issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock) -> None:
    old = issuer.sign(issuer.claims())
    assert verifier.verify(old).name == "alice"
    assert issuer.jwks_fetches == 1
    issuer.rotate(drop_old=True)
    new = issuer.sign(issuer.claims())
    _refused(verifier, new, "unknown key")  # the key set was fetched under 10 s ago: not again yet
    clock.now += 11  # past the refetch interval: the unknown kid fetches the key set again
    assert verifier.verify(new).name == "alice"
    assert issuer.jwks_fetches == 2
    _refused(verifier, old, "unknown key 'rsa-1'")  # the provider dropped it


def test_the_key_set_expires(issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock) -> None:
    token = issuer.sign(issuer.claims())
    verifier.verify(token)
    verifier.verify(token)
    assert issuer.jwks_fetches == 1
    clock.now += 301
    verifier.verify(token)
    assert issuer.jwks_fetches == 2


def test_unknown_kid_floods_fetch_a_bounded_number_of_times(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    verifier.verify(issuer.sign(issuer.claims()))
    forged = [issuer.forge(issuer.claims(), kid=f"made-up-{i}") for i in range(3)]
    for _ in range(20):
        for token in forged:
            _refused(verifier, token, "unknown key")
    assert issuer.jwks_fetches == 1
    clock.now += 11
    for _ in range(20):
        _refused(verifier, forged[0], "unknown key")
    assert issuer.jwks_fetches == 2


def test_concurrent_first_use_fetches_once(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    token = issuer.sign(issuer.claims(roles=["curator"]))
    seen: list[Identity] = []

    def work() -> None:
        seen.append(verifier.verify(token))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [Identity("alice", Role.CURATOR, "oidc")] * 8
    assert issuer.jwks_fetches == 1


def test_roles(issuer: OidcIssuer) -> None:
    plain = OidcVerifier(issuer.issuer, AUDIENCE)
    _refused(plain, issuer.sign(issuer.claims(roles=None)), "token carries no cxrneo role in claim 'roles'")
    _refused(plain, issuer.sign(issuer.claims(roles=["offline_access", 3])), "no cxrneo role")
    assert plain.verify(issuer.sign(issuer.claims(roles="Curator"))).role is Role.CURATOR
    nested = OidcVerifier(issuer.issuer, AUDIENCE, role_claim="realm_access.roles")
    token = issuer.sign(issuer.claims(roles=None, realm_access={"roles": ["offline_access", "curator", "viewer"]}))
    assert nested.verify(token).role is Role.CURATOR
    _refused(nested, issuer.sign(issuer.claims(realm_access={"roles": []})), "in claim 'realm_access.roles'")
    namespaced = OidcVerifier(issuer.issuer, AUDIENCE, role_claim="https://cxrneo.example/roles")
    token = issuer.sign(issuer.claims(roles=None, **{"https://cxrneo.example/roles": ["admin"]}))
    assert namespaced.verify(token).role is Role.ADMIN


def test_a_discovery_document_naming_another_issuer_is_refused(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    issuer.discovery_issuer = "https://evil.example/realms/cxrneo"
    token = issuer.sign(issuer.claims())
    _refused(verifier, token, "identity provider names itself 'https://evil.example")
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 0)
    issuer.discovery_issuer = None  # fixed; the failure is repeated, not retried, for 10 s
    _refused(verifier, token, "identity provider names itself")
    assert issuer.discovery_fetches == 1
    clock.now += 11
    assert verifier.verify(token).name == "alice"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (2, 1)


def test_an_oversized_discovery_document_is_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    issuer.discovery_extra = {"padding": "x" * (1 << 20)}
    _refused(verifier, issuer.sign(issuer.claims()), "larger than 1048576 bytes")


def test_an_unreachable_issuer_is_one_line(issuer: OidcIssuer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = OidcVerifier(f"http://127.0.0.1:{port}/realms/cxrneo", AUDIENCE)
    _refused(gone, issuer.sign(issuer.claims(iss=gone.issuer)), "identity provider unreachable: ")
    lost = OidcVerifier(issuer.issuer + "/nowhere", AUDIENCE)
    _refused(lost, issuer.sign(issuer.claims(iss=lost.issuer)), "identity provider answered HTTP 404")


def test_bad_issuer_urls_are_refused_at_start() -> None:
    for url in ("http://idp.example.org/realms/x", "file:///etc/passwd", "ftp://127.0.0.1/x", "not a url", "https://"):
        with pytest.raises(ConfigError):
            OidcVerifier(url, AUDIENCE)
    OidcVerifier("https://idp.example.org/realms/x", AUDIENCE)  # https anywhere; nothing fetched yet
    OidcVerifier("http://localhost:8080/realms/x", AUDIENCE)


def test_https_checks_the_certificate_against_the_ca_bundle(tmp_path: Path) -> None:
    with OidcIssuer(tls_dir=tmp_path) as tls:
        token = tls.sign(tls.claims())
        assert tls.issuer.startswith("https://")
        _refused(OidcVerifier(tls.issuer, AUDIENCE), token, "identity provider unreachable: ")
        trusting = OidcVerifier(tls.issuer, AUDIENCE, ca_bundle=tmp_path / "cert.pem")
        assert trusting.verify(token) == Identity("alice", Role.VIEWER, "oidc")
    with pytest.raises(ConfigError):
        OidcVerifier(tls.issuer, AUDIENCE, ca_bundle=tmp_path / "missing.pem")
