"""Bearer authentication: ``Authorization: Bearer <JWT>`` from the callers' own login service, or
an API key sent as a bearer token.

A JWT is verified against the keys of ``KNOWLEDGE_JWT_JWKS_URL``: fetched once, cached, and
refetched for an unknown ``kid`` at most once a minute, so forged tokens cannot make the service
fetch the JWKS for each of them while a rotated key is picked up within the minute. Its issuer and
audience are checked and ``exp``, ``iss``, ``aud`` and ``sub`` required. Its application claim
(``KNOWLEDGE_JWT_ACTOR_CLAIM``, ``azp`` by default) is
mapped by ``KNOWLEDGE_JWT_ACTORS`` to one of the actors fixed in ``knowledge_plane.serving.access``:
a token never names namespaces, packs or applications itself, so its grant is always one the code
defines. Its ``sub`` is the end user the rate limits count.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import jwt

from knowledge_plane.serving.access import ACTORS, Actor
from knowledge_plane.settings import ServiceSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]  # asymmetric only: no shared secret
REFETCH_AFTER_S = 60.0  # an unknown kid refetches the JWKS no more often than this


class BearerRejected(Exception):
    """A bearer JWT that does not authenticate anyone; the message says why (never echoing the token)."""


class VerifierUnavailable(Exception):
    """The JWKS could not be fetched: the token may be good, the service cannot tell (503)."""


@dataclass(frozen=True)
class TokenIdentity:
    actor: Actor
    subject: str


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def parse_actor_map(value: str) -> dict[str, str]:
    """``claim-value=actor,…``; an unknown actor or a malformed entry fails at start-up."""
    mapping = {}
    for position, raw in enumerate(value.split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        claim, sep, name = (part.strip() for part in item.partition("="))
        if not sep or not claim or not name:
            raise ValueError(f"KNOWLEDGE_JWT_ACTORS entry {position} is not 'claim-value=actor'")
        if name not in ACTORS:
            raise ValueError(f"KNOWLEDGE_JWT_ACTORS entry {position} names unknown actor {name!r}; "
                             f"known actors are {', '.join(sorted(ACTORS))}")
        mapping[claim] = name
    return mapping


class JwksKeys:
    """The signing keys a JWKS URL publishes, by ``kid``: fetched once, refetched for an unknown ``kid``
    at most every ``REFETCH_AFTER_S`` (the query service's callers' tokens and the console's OIDC)."""

    def __init__(self, url: str, timeout: float = 5):
        self._jwks = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        self._by_kid: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()  # one fetch at a time; routes run in a thread pool

    def key_for(self, token: str) -> jwt.PyJWK:
        """The key that signed ``token``; BearerRejected when none has its kid, VerifierUnavailable when
        the JWKS cannot be fetched."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError as exc:
            raise BearerRejected(f"not a JWT ({type(exc).__name__})") from None
        if not kid:
            raise BearerRejected("the token names no key of the JWKS (no kid)")
        with self._lock:
            if kid not in self._by_kid and time.monotonic() - self._fetched_at >= REFETCH_AFTER_S:
                try:
                    keys = self._jwks.get_signing_keys()
                except jwt.PyJWKClientConnectionError as exc:
                    raise VerifierUnavailable(f"the JWKS could not be fetched: {exc}") from None
                except (jwt.PyJWKClientError, jwt.PyJWKError) as exc:
                    raise VerifierUnavailable(f"the JWKS holds no usable signing key ({type(exc).__name__})") from None
                self._by_kid = {k.key_id: k for k in keys if k.key_id}
                self._fetched_at = time.monotonic()
            key = self._by_kid.get(kid)
        if key is None:
            raise BearerRejected("no key of the JWKS has this token's kid")
        return key


class JwtVerifier:
    def __init__(self, service: ServiceSettings):
        if not service.jwt_issuer or not service.jwt_audience:
            raise ValueError("KNOWLEDGE_JWT_JWKS_URL needs KNOWLEDGE_JWT_ISSUER and KNOWLEDGE_JWT_AUDIENCE")
        self.issuer = service.jwt_issuer
        self.audience = service.jwt_audience
        self.claim = service.jwt_actor_claim
        self.actors = parse_actor_map(service.jwt_actors)
        self._keys = JwksKeys(service.jwt_jwks_url)

    @classmethod
    def from_settings(cls, service: ServiceSettings) -> JwtVerifier | None:
        return cls(service) if service.jwt_jwks_url else None

    def verify(self, token: str) -> TokenIdentity:
        key = self._keys.key_for(token)
        try:
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.InvalidTokenError as exc:
            raise BearerRejected(f"invalid token: {exc}") from None
        name = self.actors.get(str(claims.get(self.claim, "")))
        if name is None:
            raise BearerRejected(f"the token's {self.claim} claim names no actor of this service")
        return TokenIdentity(ACTORS[name], str(claims["sub"]))
