"""OAUTHBEARER tokens for the Kafka clients: a hook the operator names (``MODULE:CALLABLE``), or
Amazon MSK IAM through AWS's signer (the optional extra ``msk``).

aiokafka asks a token provider for a token on every new connection; Faust passes the same
provider to its clients. MSK IAM is OAUTHBEARER on the wire: the token is a SigV4-signed
``kafka-cluster:Connect`` URL that the brokers check against IAM.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Callable
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import AIOKafkaConnection, OAuthAuthenticator

#: How the optional MSK dependency is installed (said in the error when it is missing).
MSK_EXTRA = "pip install 'callcenter-monitor[msk]'"
# Renew an MSK token this long before it expires: connections opened meanwhile still get a
# token the brokers accept.
_MSK_RENEW_BEFORE_MS = 60_000


class TokenProviderError(ValueError):
    """A token provider that cannot be loaded, or that gave no usable token."""


class _OAuthAuthenticator(OAuthAuthenticator):  # type: ignore[misc]
    """aiokafka's OAUTHBEARER exchange with RFC 7628's failure path, which aiokafka lacks.

    A broker that refuses the token does not fail the first SaslAuthenticate: it answers with
    an error document (``{"status": "invalid_token"}``) and waits for the client's ``\x01``,
    after which it fails the exchange with its reason. aiokafka takes that answer for success,
    and the refusal surfaces later as a closed connection that says nothing.
    """

    _error_answered = False

    async def step(self, payload: bytes | None) -> tuple[bytes, bool] | None:
        if self._token_sent and payload:
            if self._error_answered:
                return None
            self._error_answered = True
            return b"\x01", True
        result: tuple[bytes, bool] | None = await super().step(payload)
        return result


def _authenticator_oauth(self: Any) -> OAuthAuthenticator:
    return _OAuthAuthenticator(sasl_oauth_token_provider=self._sasl_oauth_token_provider)


def install_oauth_failure_path() -> None:
    """Make every aiokafka connection of this process (Faust's included) complete a refused
    OAUTHBEARER exchange, so the broker's reason reaches the caller as SaslAuthenticationFailed.
    Idempotent."""
    AIOKafkaConnection.authenticator_oauth = _authenticator_oauth


class CallableTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """A provider from a plain callable: called on every token request (in a thread unless it is
    a coroutine function, since fetching a token usually means an HTTP request). The callable
    returns the token, or once an :class:`AbstractTokenProvider` that answers from then on."""

    def __init__(self, function: Callable[[], Any], name: str) -> None:
        self.function = function
        self.name = name
        self._delegate: AbstractTokenProvider | None = None

    async def token(self) -> str:
        if self._delegate is not None:
            return _checked(await self._delegate.token(), self.name)
        if inspect.iscoroutinefunction(self.function):
            result = await self.function()
        else:
            result = await asyncio.to_thread(self.function)
            if inspect.isawaitable(result):
                result = await result
        if isinstance(result, AbstractTokenProvider):
            self._delegate = result
            return _checked(await result.token(), self.name)
        return _checked(result, self.name)

    def extensions(self) -> dict[str, str]:
        if self._delegate is not None and callable(getattr(self._delegate, "extensions", None)):
            return dict(self._delegate.extensions())
        return {}


def _checked(token: object, name: str) -> str:
    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    if not isinstance(token, str) or not token.strip():
        raise TokenProviderError(
            f"OAUTHBEARER token provider {name} returned {type(token).__name__}, not a token string"
        )
    return token.strip()


def load_token_provider(spec: str) -> AbstractTokenProvider:
    """The provider named ``MODULE:CALLABLE`` (``CALLABLE`` may be dotted, ``obj.method``): an
    :class:`AbstractTokenProvider` instance, or a callable returning a token or a provider.

    Raises :class:`TokenProviderError` saying what is wrong with the name.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise TokenProviderError(
            f"--sasl-oauth-token-provider {spec!r}: expected MODULE:CALLABLE, e.g. mytokens:fetch"
        )
    try:
        target: Any = importlib.import_module(module_name.strip())
    except Exception as exc:
        raise TokenProviderError(
            f"--sasl-oauth-token-provider {spec}: cannot import {module_name}: "
            f"{type(exc).__name__}: {exc} (is it on PYTHONPATH?)"
        ) from None
    for part in attribute.strip().split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TokenProviderError(
                f"--sasl-oauth-token-provider {spec}: {module_name} has no {attribute}"
            ) from None
    if isinstance(target, AbstractTokenProvider):
        return target
    if not callable(target):
        raise TokenProviderError(
            f"--sasl-oauth-token-provider {spec}: {type(target).__name__} is neither callable "
            "nor an aiokafka AbstractTokenProvider"
        )
    return CallableTokenProvider(target, spec)


def _msk_signer() -> Callable[[str], tuple[str, int]]:
    """AWS's signer, imported only when MSK IAM is asked for (boto3 is large)."""
    try:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # noqa: PLC0415
    except ImportError:
        raise TokenProviderError(
            f"--sasl-mechanism AWS_MSK_IAM needs the optional MSK support: {MSK_EXTRA}"
        ) from None
    generate: Callable[[str], tuple[str, int]] = MSKAuthTokenProvider.generate_auth_token
    return generate


class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Amazon MSK IAM tokens signed with the default AWS credential chain (environment, web
    identity for EKS service accounts, ECS task role, EC2 instance profile), kept until shortly
    before they expire."""

    def __init__(self, region: str, *, clock: Callable[[], float] = time.time) -> None:
        if not region.strip():
            raise TokenProviderError("AWS_MSK_IAM needs --aws-region")
        self.region = region.strip()
        self._generate = _msk_signer()
        self._clock = clock
        self._token: str | None = None
        self._expires_ms = 0

    def _fresh(self) -> str:
        if self._token is None or self._clock() * 1000 >= self._expires_ms - _MSK_RENEW_BEFORE_MS:
            try:
                self._token, self._expires_ms = self._generate(self.region)
            except Exception as exc:
                # No credentials found is the usual cause; botocore says which.
                raise TokenProviderError(
                    f"AWS_MSK_IAM: cannot sign a token for {self.region}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        return self._token

    def token_now(self) -> str:
        """A token, signed here if none is kept or it is about to expire (blocks while it
        looks up credentials)."""
        return self._fresh()

    async def token(self) -> str:
        # Looking up credentials can mean an HTTP request (instance metadata, STS).
        return await asyncio.to_thread(self._fresh)
