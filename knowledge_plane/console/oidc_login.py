"""Browser sign-in through the OpenID Connect provider: the authorization code flow with PKCE.

``/login/oidc`` sends the browser to the provider's authorization endpoint (found by discovery at
``<issuer>/.well-known/openid-configuration``) with a fresh ``state``, ``nonce`` and S256 code
challenge, all three kept in the signed session cookie; ``/login/oidc/callback`` checks the
``state``, exchanges the code with the verifier (Authlib's OAuth2 client does the PKCE and client
authentication), checks the ID token (signature from the JWKS, issuer, audience = client id, the
``nonce``) and takes the person's name and role from the access token exactly as the REST API does
with a bearer token, so the browser and the API grant the same roles.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import httpx
import jwt
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from knowledge_plane.console.auth import AuthError, BearerTokens, Principal
from knowledge_plane.console.config import OidcSettings

SCOPE = "openid profile"


class SignInFailed(Exception):
    """The provider refused, or what came back does not check out (the message says which)."""


class BrowserSignIn:
    """The two halves of the flow for one provider and client."""

    def __init__(self, oidc: OidcSettings, tokens: BearerTokens):
        if not oidc.client_id:
            raise ValueError("browser sign-in needs KNOWLEDGE_CONSOLE_OIDC_CLIENT_ID")
        self.oidc, self.tokens = oidc, tokens
        self._discovered: dict[str, Any] | None = None

    def _endpoints(self) -> dict[str, Any]:
        if self._discovered is None:
            url = f"{self.oidc.issuer.rstrip('/')}/.well-known/openid-configuration"
            try:
                document = httpx.get(url, timeout=10).raise_for_status().json()
            except (httpx.HTTPError, ValueError) as exc:
                raise SignInFailed(f"the identity provider's discovery document could not be read ({url}): {exc}") \
                    from exc
            if document.get("issuer") != self.oidc.issuer:
                raise SignInFailed(f"the discovery document names issuer {document.get('issuer')!r}, "
                                   f"not {self.oidc.issuer!r}")
            self._discovered = document
        return self._discovered

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(self.oidc.client_id, self.oidc.client_secret, scope=SCOPE, redirect_uri=redirect_uri,
                            code_challenge_method="S256", timeout=10,
                            token_endpoint_auth_method="client_secret_basic" if self.oidc.client_secret else "none")

    def redirect_uri(self, callback: str) -> str:
        return self.oidc.redirect_url or callback

    def start(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """The provider URL to send the browser to, and what the session must keep until it returns."""
        pending = {"verifier": secrets.token_urlsafe(48), "nonce": secrets.token_urlsafe(24),
                   "redirect_uri": redirect_uri}
        with self._client(redirect_uri) as client:
            url, state = client.create_authorization_url(self._endpoints()["authorization_endpoint"],
                                                         code_verifier=pending["verifier"], nonce=pending["nonce"])
        return url, {**pending, "state": state}

    def finish(self, pending: dict[str, str] | None, params: dict[str, str]) -> Principal:
        """The signed-in person, from the provider's answer to ``start``."""
        if params.get("error"):
            detail = params.get("error_description") or ""
            raise SignInFailed(f"the identity provider refused the sign-in: {params['error']} {detail}".strip())
        if not pending or not hmac.compare_digest(pending.get("state", ""), params.get("state", "")):
            raise SignInFailed("the sign-in's state does not match this browser's: start again from the sign-in page")
        if not params.get("code"):
            raise SignInFailed("the identity provider sent no authorization code")
        try:
            with self._client(pending["redirect_uri"]) as client:
                token = client.fetch_token(self._endpoints()["token_endpoint"], code=params["code"],
                                           code_verifier=pending["verifier"])
        except (OAuthError, httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"the authorization code could not be exchanged: {exc}") from exc
        self._check_id_token(token.get("id_token"), pending["nonce"])
        try:
            return self.tokens.principal(str(token.get("access_token") or ""))
        except AuthError as exc:
            raise SignInFailed(f"the provider's access token is refused: {exc}") from exc

    def _check_id_token(self, id_token: str | None, nonce: str) -> None:
        if not id_token:
            raise SignInFailed("the identity provider sent no ID token (is the 'openid' scope allowed?)")
        try:
            key = self.tokens.signing_key(id_token)
            claims = jwt.decode(id_token, key, algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
                                audience=self.oidc.client_id, issuer=self.oidc.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError, AuthError) as exc:
            raise SignInFailed(f"invalid ID token: {exc}") from exc
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInFailed("the ID token's nonce is not this sign-in's: start again from the sign-in page")
