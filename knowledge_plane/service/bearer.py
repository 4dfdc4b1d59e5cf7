"""Bearer authentication: ``Authorization: Bearer <JWT>`` from the callers' own login service, or
an API key sent as a bearer token.

A JWT is verified against the keys of ``KNOWLEDGE_JWT_JWKS_URL`` (fetched once, cached, refetched
for an unknown ``kid``), with its issuer and audience checked and ``exp``, ``iss``, ``aud`` and
``sub`` required. Its application claim (``KNOWLEDGE_JWT_ACTOR_CLAIM``, ``azp`` by default) is
mapped by ``KNOWLEDGE_JWT_ACTORS`` to one of the actors fixed in ``knowledge_plane.serving.access``:
a token never names namespaces, packs or applications itself, so its grant is always one the code
defines. Its ``sub`` is the end user the rate limits count.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from knowledge_plane.serving.access import ACTORS, Actor
from knowledge_plane.settings import ServiceSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]  # asymmetric only: no shared secret


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


class JwtVerifier:
    def __init__(self, service: ServiceSettings):
        if not service.jwt_issuer or not service.jwt_audience:
            raise ValueError("KNOWLEDGE_JWT_JWKS_URL needs KNOWLEDGE_JWT_ISSUER and KNOWLEDGE_JWT_AUDIENCE")
        self.issuer = service.jwt_issuer
        self.audience = service.jwt_audience
        self.claim = service.jwt_actor_claim
        self.actors = parse_actor_map(service.jwt_actors)
        self._keys = jwt.PyJWKClient(service.jwt_jwks_url, cache_keys=True, lifespan=300, timeout=5)

    @classmethod
    def from_settings(cls, service: ServiceSettings) -> JwtVerifier | None:
        return cls(service) if service.jwt_jwks_url else None

    def verify(self, token: str) -> TokenIdentity:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise VerifierUnavailable(f"the JWKS could not be fetched: {exc}") from None
        except (jwt.PyJWKClientError, jwt.DecodeError, jwt.PyJWKError) as exc:
            raise BearerRejected(f"no key of the JWKS verifies this token ({type(exc).__name__})") from None
        try:
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.InvalidTokenError as exc:
            raise BearerRejected(f"invalid token: {exc}") from None
        name = self.actors.get(str(claims.get(self.claim, "")))
        if name is None:
            raise BearerRejected(f"the token's {self.claim} claim names no actor of this service")
        return TokenIdentity(ACTORS[name], str(claims["sub"]))
