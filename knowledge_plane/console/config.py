"""The console's sign-in settings, resolved and checked once from ``Settings.console``.

The variables (``KNOWLEDGE_CONSOLE_*``, the secret also as ``KNOWLEDGE_CONSOLE_SECRET_FILE``) are
fields of ``knowledge_plane.settings.ConsoleSection``; docs/configuration.md lists them.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from knowledge_plane.settings import ConsoleSection

ROLES = ("viewer", "reviewer", "admin")  # each role can do everything the ones before it can


@dataclass(frozen=True)
class OidcSettings:
    jwks_url: str
    issuer: str
    audience: str
    roles_claim: str = "roles"
    name_claim: str = "preferred_username"
    # browser sign-in (authorization code with PKCE); without a client id only bearer tokens are accepted
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    redirect_url: str | None = None


@dataclass(frozen=True)
class ConsoleSettings:
    secret: str
    accounts_file: Path | None = None
    oidc: OidcSettings | None = None
    secure_cookies: bool = False
    max_body_bytes: int = 64 * 1024
    session_seconds: int = 8 * 3600
    signin_failures_per_account: int = 5
    signin_failures_per_address: int = 20
    signin_window_seconds: int = 900
    # the query service's KNOWLEDGE_TRUSTED_PROXIES: whose X-Forwarded-For names the client address
    trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()

    @classmethod
    def of(cls, section: ConsoleSection,
           trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> ConsoleSettings:
        oidc_parts = [section.oidc_jwks_url, section.oidc_issuer, section.oidc_audience]
        if any(oidc_parts) and not all(oidc_parts):
            raise ValueError("OIDC needs all three of KNOWLEDGE_CONSOLE_OIDC_JWKS_URL, _ISSUER and _AUDIENCE")
        if section.oidc_client_id and not all(oidc_parts):
            raise ValueError("KNOWLEDGE_CONSOLE_OIDC_CLIENT_ID needs the provider too: "
                             "KNOWLEDGE_CONSOLE_OIDC_JWKS_URL, _ISSUER and _AUDIENCE")
        secret = section.oidc_client_secret.get_secret_value() if section.oidc_client_secret else None
        oidc = OidcSettings(*oidc_parts, roles_claim=section.oidc_roles_claim,  # type: ignore[arg-type]
                            name_claim=section.oidc_name_claim, client_id=section.oidc_client_id,
                            client_secret=secret, redirect_url=section.oidc_redirect_url) if all(oidc_parts) else None
        settings = cls(
            # A random key keeps a single process safe; sessions then end when it restarts.
            secret=section.secret.get_secret_value() if section.secret else secrets.token_urlsafe(32),
            accounts_file=section.accounts,
            oidc=oidc,
            secure_cookies=section.secure_cookies,
            max_body_bytes=section.max_body_bytes,
            signin_failures_per_account=section.signin_failures_per_account,
            signin_failures_per_address=section.signin_failures_per_address,
            signin_window_seconds=section.signin_window_seconds,
            trusted_proxies=tuple(trusted_proxies),
        )
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
