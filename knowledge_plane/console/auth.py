"""Who is asking, and may they: accounts, bearer tokens, signed session cookies, CSRF, roles.

Two ways in. The embedded default is an accounts file of argon2 password hashes, one
``name:role:hash`` line per person, re-read when it changes (removing a line ends that person's
sessions at their next request). In production an OpenID Connect provider issues JWT bearer tokens,
validated here against its JWKS, issuer and audience; their role comes from a claim.

A browser session is a cookie signed with the console's secret (HttpOnly, SameSite=Strict), holding
the account name and a CSRF token that every form and every unsafe request made with the cookie
must echo. Bearer-token requests carry no cookie, so they need no CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from knowledge_plane.console.config import ROLES, ConsoleSettings
from knowledge_plane.service.bearer import BearerRejected, JwksKeys, VerifierUnavailable

SESSION_COOKIE = "kp_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(Exception):
    """A credential that was presented but is not valid (bad token, bad signature…)."""


@dataclass(frozen=True)
class Principal:
    """A signed-in person. ``actor`` is what the audit log records: derived, never typed by anyone."""

    name: str
    role: str
    via: str  # "account" or "oidc"

    @property
    def actor(self) -> str:
        return f"{self.via}:{self.name}"

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str


def parse_accounts(text: str, source: str = "accounts file") -> dict[str, Account]:
    """``name:role:hash`` lines; blank lines and ``#`` comments ignored; any other line is an error."""
    accounts: dict[str, Account] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[0] or not parts[2].startswith("$argon2"):
            raise ValueError(f"{source} line {number}: expected name:role:$argon2id$… (see `knowledge console "
                             "--hash-password`)")
        name, role, hashed = parts
        if role not in ROLES:
            raise ValueError(f"{source} line {number}: unknown role {role!r} (one of {', '.join(ROLES)})")
        accounts[name] = Account(name, role, hashed)
    return accounts


class Accounts:
    """The accounts file, re-read when its modification time changes."""

    def __init__(self, path: Path | None):
        self.path = path
        self._stamp: float | None = None
        self._accounts: dict[str, Account] = {}

    def _current(self) -> dict[str, Account]:
        if self.path is None:
            return {}
        stamp = self.path.stat().st_mtime_ns
        if stamp != self._stamp:
            self._accounts = parse_accounts(self.path.read_text(encoding="utf-8"), str(self.path))
            self._stamp = stamp
        return self._accounts

    def get(self, name: str) -> Account | None:
        return self._current().get(name)

    def authenticate(self, name: str, password: str) -> Principal | None:
        account = self.get(name)
        try:
            _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return Principal(account.name, account.role, "account") if account else None


class BearerTokens:
    """JWTs from the OIDC provider: signature from its JWKS, then issuer, audience, expiry."""

    def __init__(self, settings: ConsoleSettings):
        self.oidc = settings.oidc
        self._keys = JwksKeys(self.oidc.jwks_url) if self.oidc else None

    def signing_key(self, token: str) -> Any:
        """The provider's key that signed ``token`` (by its ``kid``), from the cached JWKS (refetched for
        an unknown kid at most once a minute: forged tokens do not each cost a fetch)."""
        if self._keys is None:
            raise AuthError("no OIDC provider is configured")
        try:
            return self._keys.key_for(token).key
        except (BearerRejected, VerifierUnavailable) as exc:
            raise AuthError(f"invalid bearer token: {exc}") from None

    def principal(self, token: str) -> Principal:
        if self.oidc is None or self._keys is None:
            raise AuthError("bearer tokens are not accepted: no OIDC provider is configured")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.signing_key(token), algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
                audience=self.oidc.audience, issuer=self.oidc.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise AuthError(f"invalid bearer token: {exc}") from exc
        granted = claims.get(self.oidc.roles_claim) or []
        granted = [granted] if isinstance(granted, str) else list(granted)
        known = [r for r in ROLES if r in granted]
        if not known:
            raise AuthError(f"the token grants none of the console's roles ({', '.join(ROLES)}) "
                            f"in its {self.oidc.roles_claim!r} claim")
        name = str(claims.get(self.oidc.name_claim) or claims["sub"])
        return Principal(name, known[-1], "oidc")


class Sessions:
    """Signed, timed session cookies: {"csrf": token} before sign-in, plus {"user": name} after."""

    def __init__(self, settings: ConsoleSettings):
        self.serializer = URLSafeTimedSerializer(settings.secret, salt="governance-console-session")
        self.max_age = settings.session_seconds
        self.secure = settings.secure_cookies

    def load(self, cookie: str | None) -> dict[str, str]:
        if not cookie:
            return {}
        try:
            data = self.serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def dump(self, data: dict[str, str]) -> str:
        return self.serializer.dumps(data)

    def cookie_args(self) -> dict[str, Any]:
        return {"key": SESSION_COOKIE, "max_age": self.max_age, "httponly": True, "samesite": "strict",
                "secure": self.secure, "path": "/"}


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
