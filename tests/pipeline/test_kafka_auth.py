"""OAUTHBEARER token providers: the MODULE:CALLABLE hook, and MSK IAM tokens made by AWS's real
signer from static test credentials (no network: the signature is checked here, by SigV4's
own rules)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sys
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from aiokafka.abc import AbstractTokenProvider

from monitor.pipeline.kafka_auth import (
    MSK_EXTRA,
    CallableTokenProvider,
    MskIamTokenProvider,
    TokenProviderError,
    load_token_provider,
)
from tests.integration import oauth_token

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
# Where else botocore's default chain would look for credentials.
_OTHER_AWS_SOURCES = (
    "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)  # fmt: skip


# -- the hook --------------------------------------------------------------------------------


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module of token hooks, importable by name as an operator's module would be."""
    module = types.ModuleType("test_token_hooks")

    class Fixed(AbstractTokenProvider):  # type: ignore[misc]
        async def token(self) -> str:
            return "from-provider"

        def extensions(self) -> dict[str, str]:
            return {"traceId": "abc"}

    calls: list[str] = []

    def plain() -> str:
        calls.append("plain")
        return f"token-{len(calls)}"

    async def coroutine() -> str:
        return "from-coroutine"

    module.Fixed = Fixed  # type: ignore[attr-defined]
    module.instance = Fixed()  # type: ignore[attr-defined]
    module.plain = plain  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    module.coroutine = coroutine  # type: ignore[attr-defined]
    module.as_bytes = lambda: b"  bytes-token\n"  # type: ignore[attr-defined]
    module.nothing = lambda: None  # type: ignore[attr-defined]
    module.empty = lambda: "  "  # type: ignore[attr-defined]
    module.not_callable = 42  # type: ignore[attr-defined]
    module.ns = types.SimpleNamespace(fetch=lambda: "dotted")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def token_of(spec: str) -> str:
    return asyncio.run(load_token_provider(spec).token())


def test_a_callable_is_called_for_every_token(hooks: types.ModuleType) -> None:
    provider = load_token_provider("test_token_hooks:plain")
    assert isinstance(provider, CallableTokenProvider)
    assert asyncio.run(provider.token()) == "token-1"
    assert asyncio.run(provider.token()) == "token-2"
    assert hooks.calls == ["plain", "plain"]


def test_a_provider_instance_is_used_as_it_is(hooks: types.ModuleType) -> None:
    assert load_token_provider("test_token_hooks:instance") is hooks.instance


def test_a_factory_returning_a_provider_delegates_to_it(hooks: types.ModuleType) -> None:
    provider = load_token_provider("test_token_hooks:Fixed")
    assert asyncio.run(provider.token()) == "from-provider"
    assert provider.extensions() == {"traceId": "abc"}


def test_coroutines_bytes_and_dotted_names(hooks: types.ModuleType) -> None:
    assert token_of("test_token_hooks:coroutine") == "from-coroutine"
    assert token_of("test_token_hooks:as_bytes") == "bytes-token"
    assert token_of("test_token_hooks:ns.fetch") == "dotted"


def test_the_unsecured_jwt_hook_of_the_tests() -> None:
    token = token_of("tests.integration.oauth_token:token")
    header, claims, signature = token.split(".")
    assert signature == ""

    def decoded(part: str) -> dict[str, object]:
        import json

        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))

    assert decoded(header) == {"alg": "none"}
    body = decoded(claims)
    assert body["sub"] == oauth_token.SUBJECT
    assert body["scope"] == oauth_token.SCOPE
    assert isinstance(body["iat"], int)
    assert body["exp"] == body["iat"] + oauth_token.LIFETIME_S
    assert abs(body["iat"] - time.time()) < 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon", "expected MODULE:CALLABLE"),
        ("module:", "expected MODULE:CALLABLE"),
        (":token", "expected MODULE:CALLABLE"),
        ("no_such_module_here:token", "cannot import no_such_module_here: ModuleNotFoundError"),
        ("test_token_hooks:missing", "test_token_hooks has no missing"),
        ("test_token_hooks:not_callable", "int is neither callable nor an aiokafka"),
    ],
)
def test_a_bad_name_says_what_is_wrong(hooks: types.ModuleType, spec: str, message: str) -> None:
    with pytest.raises(TokenProviderError, match=message) as raised:
        load_token_provider(spec)
    assert "\n" not in str(raised.value)
    assert "--sasl-oauth-token-provider" in str(raised.value)


@pytest.mark.parametrize("name", ["nothing", "empty"])
def test_a_hook_that_returns_no_token_is_an_error(hooks: types.ModuleType, name: str) -> None:
    with pytest.raises(TokenProviderError, match=f"test_token_hooks:{name} returned"):
        token_of(f"test_token_hooks:{name}")


# -- Amazon MSK IAM --------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Static credentials from the environment, and nothing else botocore could look at: no
    files, no instance metadata (never a request to a metadata address from a test)."""
    for name in _OTHER_AWS_SOURCES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    yield


def signed_url(token: str) -> str:
    assert "=" not in token  # base64url without padding, as MSK expects
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def sigv4_signature(url: str, secret: str) -> str:
    """The signature SigV4 prescribes for a presigned GET of this URL (without its
    X-Amz-Signature and the unsigned User-Agent), computed from the spec here."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.pop("X-Amz-Signature")
    params.pop("User-Agent")
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    canonical = "\n".join(
        ["GET", "/", query, f"host:{parts.netloc}\n", "host", hashlib.sha256(b"").hexdigest()]
    )
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
         hashlib.sha256(canonical.encode()).hexdigest()]
    )  # fmt: skip
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_msk_token_is_a_signed_connect_url(aws_env: None) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token = asyncio.run(MskIamTokenProvider(REGION).token())
    url = signed_url(token)
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        f"kafka.{REGION}.amazonaws.com",
        "/",
    )
    assert params["Action"] == "kafka-cluster:Connect"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= datetime.now(UTC)
    day = signed_at.strftime("%Y%m%d")
    assert params["X-Amz-Credential"] == f"{ACCESS_KEY}/{day}/{REGION}/kafka-cluster/aws4_request"
    assert params["X-Amz-Expires"] == "900"
    assert params["X-Amz-SignedHeaders"] == "host"
    assert "X-Amz-Security-Token" not in params
    assert params["User-Agent"].startswith("aws-msk-iam-sasl-signer-python/")
    assert params["X-Amz-Signature"] == sigv4_signature(url, SECRET_KEY)
    assert params["X-Amz-Signature"] != sigv4_signature(url, SECRET_KEY + "x")


def test_msk_token_carries_a_session_token(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session/token+1")
    params = dict(parse_qsl(urlsplit(signed_url(MskIamTokenProvider(REGION).token_now())).query))
    assert params["X-Amz-Security-Token"] == "session/token+1"


def test_msk_token_is_kept_until_shortly_before_it_expires(aws_env: None) -> None:
    now = [time.time()]
    provider = MskIamTokenProvider(REGION, clock=lambda: now[0])
    signed: list[str] = []
    generate = provider._generate

    def counting(region: str) -> tuple[str, int]:
        token, expires_ms = generate(region)
        signed.append(token)
        return token, expires_ms

    provider._generate = counting
    first = provider.token_now()
    now[0] += 600
    assert provider.token_now() == first
    assert len(signed) == 1
    now[0] += 260  # 900 s after signing less the renewal margin: a new token
    provider.token_now()
    assert len(signed) == 2


def test_msk_without_credentials_is_one_clear_error(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(TokenProviderError, match=f"AWS_MSK_IAM: cannot sign a token for {REGION}"):
        MskIamTokenProvider(REGION).token_now()


def test_msk_needs_a_region(aws_env: None) -> None:
    with pytest.raises(TokenProviderError, match="needs --aws-region"):
        MskIamTokenProvider(" ")


def test_msk_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "aws_msk_iam_sasl_signer", None)
    with pytest.raises(TokenProviderError) as raised:
        MskIamTokenProvider(REGION)
    assert MSK_EXTRA in str(raised.value)
    assert "AWS_MSK_IAM" in str(raised.value)
