"""The console's settings, read once from the environment (``<NAME>_FILE`` honoured for secrets).

| variable | meaning | default |
|---|---|---|
| ``KNOWLEDGE_CONSOLE_ACCOUNTS`` | accounts file (``name:role:argon2-hash`` lines) | none: no password sign-in |
| ``KNOWLEDGE_CONSOLE_SECRET`` | key that signs session cookies (≥ 32 characters) | a random key per process |
| ``KNOWLEDGE_CONSOLE_OIDC_JWKS_URL`` / ``_ISSUER`` / ``_AUDIENCE`` | bearer-token validation | none: no bearer tokens |
| ``KNOWLEDGE_CONSOLE_OIDC_ROLES_CLAIM`` | claim holding the roles (list or string) | ``roles`` |
| ``KNOWLEDGE_CONSOLE_OIDC_NAME_CLAIM`` | claim naming the person in the audit | ``preferred_username``, else ``sub`` |
| ``KNOWLEDGE_CONSOLE_SECURE_COOKIES`` | ``1`` behind TLS: cookies carry ``Secure`` | ``0`` |
| ``KNOWLEDGE_CONSOLE_MAX_BODY_BYTES`` | larger request bodies are refused with 413 | 65536 |
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from knowledge_plane.settings import env_value

ROLES = ("viewer", "reviewer", "admin")  # each role can do everything the ones before it can


@dataclass(frozen=True)
class OidcSettings:
    jwks_url: str
    issuer: str
    audience: str
    roles_claim: str = "roles"
    name_claim: str = "preferred_username"


@dataclass(frozen=True)
class ConsoleSettings:
    secret: str
    accounts_file: Path | None = None
    oidc: OidcSettings | None = None
    secure_cookies: bool = False
    max_body_bytes: int = 64 * 1024
    session_seconds: int = 8 * 3600

    @classmethod
    def from_env(cls, **overrides: object) -> ConsoleSettings:
        accounts = env_value("KNOWLEDGE_CONSOLE_ACCOUNTS")
        oidc_parts = [env_value(f"KNOWLEDGE_CONSOLE_OIDC_{n}") for n in ("JWKS_URL", "ISSUER", "AUDIENCE")]
        if any(oidc_parts) and not all(oidc_parts):
            raise ValueError("OIDC needs all three of KNOWLEDGE_CONSOLE_OIDC_JWKS_URL, _ISSUER and _AUDIENCE")
        oidc = OidcSettings(*oidc_parts, roles_claim=env_value("KNOWLEDGE_CONSOLE_OIDC_ROLES_CLAIM", "roles"),
                            name_claim=env_value("KNOWLEDGE_CONSOLE_OIDC_NAME_CLAIM", "preferred_username")) \
            if all(oidc_parts) else None
        values: dict[str, object] = {
            # A random key keeps a single process safe; sessions then end when it restarts.
            "secret": env_value("KNOWLEDGE_CONSOLE_SECRET") or secrets.token_urlsafe(32),
            "accounts_file": Path(accounts) if accounts else None,
            "oidc": oidc,
            "secure_cookies": env_value("KNOWLEDGE_CONSOLE_SECURE_COOKIES", "0") == "1",
            "max_body_bytes": int(env_value("KNOWLEDGE_CONSOLE_MAX_BODY_BYTES", str(64 * 1024))),
        }
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("KNOWLEDGE_CONSOLE_SECRET must be at least 32 characters")
        if self.accounts_file is None and self.oidc is None:
            raise ValueError("the console needs KNOWLEDGE_CONSOLE_ACCOUNTS (an accounts file) or OIDC settings "
                             "(KNOWLEDGE_CONSOLE_OIDC_JWKS_URL, _ISSUER, _AUDIENCE): nobody could sign in")
        if self.accounts_file is not None and not self.accounts_file.is_file():
            raise ValueError(f"KNOWLEDGE_CONSOLE_ACCOUNTS names no file: {self.accounts_file}")
        if self.max_body_bytes < 1024:
            raise ValueError("KNOWLEDGE_CONSOLE_MAX_BODY_BYTES must be at least 1024")
