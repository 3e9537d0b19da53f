"""Unsecured JWTs (RFC 7515 ``alg: none``) that Kafka's built-in OAUTHBEARER validator accepts:
the token provider the OAUTHBEARER tests name, ``tests.integration.oauth_token:token``.

Never for production: anyone can make such a token. Real identity providers sign theirs.
"""

from __future__ import annotations

import base64
import json
import time

SUBJECT = "monitor-test"
SCOPE = "kafka"
LIFETIME_S = 600


def _part(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def unsecured_jwt(
    subject: str = SUBJECT, lifetime_s: int = LIFETIME_S, now: float | None = None
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": issued, "exp": issued + lifetime_s, "scope": SCOPE}
    # Header, claims and an empty signature: the compact serialisation of an unsecured JWS.
    return f"{_part({'alg': 'none'})}.{_part(claims)}."


def token() -> str:
    """The hook: a fresh token on every call."""
    return unsecured_jwt()


def expired_token() -> str:
    """A token the broker must refuse (it expired an hour ago)."""
    return unsecured_jwt(now=time.time() - 3600 - LIFETIME_S)
