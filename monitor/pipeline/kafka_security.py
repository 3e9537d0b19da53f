"""Kafka security settings as the clients take them: aiokafka's keyword arguments, Faust's
``broker_credentials``, and a refused connection (bad password, mechanism, certificate) as the
one line an operator reads in a crash loop.

The functions take any object with the attributes of :class:`SecurityOptions` (the settings'
``KafkaSecurity``), so every command builds its clients from the same settings the same way.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol

from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import (
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from monitor.pipeline.kafka_auth import (
    MskIamTokenProvider,
    TokenProviderError,
    install_oauth_failure_path,
    load_token_provider,
)

_TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_TOKEN_MECHANISMS = ("OAUTHBEARER", "AWS_MSK_IAM")
# TLS alerts a broker sends when it refuses the client's certificate (or the lack of one).
_CLIENT_CERT_ALERTS = (
    "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_UNKNOWN_CA", "TLSV1_ALERT_ACCESS_DENIED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_DECRYPT_ERROR",
)  # fmt: skip
# What OpenSSL says when the other end does not speak TLS at all.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
            "UNEXPECTED_EOF_WHILE_READING")  # fmt: skip
_PASSWORD_HINT = "--sasl-username, and MONITOR_SASL_PASSWORD or --sasl-password-file"


class SecurityOptions(Protocol):
    """How a client authenticates to the brokers (the attributes of the settings' security)."""

    @property
    def protocol(self) -> str: ...
    @property
    def sasl_mechanism(self) -> str | None: ...
    @property
    def sasl_username(self) -> str | None: ...
    @property
    def sasl_password(self) -> str | None: ...
    @property
    def ssl_cafile(self) -> str | None: ...
    @property
    def ssl_certfile(self) -> str | None: ...
    @property
    def ssl_keyfile(self) -> str | None: ...
    @property
    def ssl_key_password(self) -> str | None: ...
    @property
    def oauth_token_provider(self) -> str | None: ...
    @property
    def aws_region(self) -> str | None: ...


class SecurityConfigError(ValueError):
    """Security settings the clients cannot use (a certificate that does not load, say)."""


def uses_tls(options: SecurityOptions) -> bool:
    return options.protocol in _TLS_PROTOCOLS


def ssl_context(options: SecurityOptions) -> ssl.SSLContext:
    """Verify the brokers with the CA file, else the system CAs (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` move those); present the client certificate for mutual TLS."""
    try:
        context = ssl.create_default_context(cafile=options.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(
            f"--ssl-cafile {options.ssl_cafile}: not a readable PEM CA bundle ({_reason(exc)})"
        ) from None
    if options.ssl_certfile:
        # A callable, not None: with None OpenSSL would prompt on the terminal for the
        # password of an encrypted key instead of failing.
        key_password = options.ssl_key_password

        def password() -> str:
            return key_password or ""

        try:
            context.load_cert_chain(options.ssl_certfile, options.ssl_keyfile, password)
        except (OSError, ssl.SSLError) as exc:
            key = options.ssl_keyfile or options.ssl_certfile
            raise SecurityConfigError(
                f"cannot load the client certificate {options.ssl_certfile} with key {key}: "
                f"{_reason(exc)}{_key_hint(key, key_password)}"
            ) from None
    return context


def _key_hint(path: str, password: str | None) -> str:
    """OpenSSL says only "PEM lib" for an encrypted key it cannot decrypt: say what to do."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    if "ENCRYPTED PRIVATE KEY" not in text and "Proc-Type: 4,ENCRYPTED" not in text:
        return " (do the certificate and the key belong together?)"
    if password:
        return " (the key is encrypted: is its password right?)"
    return " (the key is encrypted: give MONITOR_SSL_KEY_PASSWORD or --ssl-key-password-file)"


_providers: dict[tuple[str, str], AbstractTokenProvider] = {}


def token_provider(options: SecurityOptions) -> AbstractTokenProvider | None:
    """The OAUTHBEARER token provider of the settings (one per hook or region per process, so
    a provider that keeps its token keeps it for every client)."""
    mechanism = options.sasl_mechanism
    if not options.protocol.startswith("SASL") or mechanism not in _TOKEN_MECHANISMS:
        return None
    if mechanism == "AWS_MSK_IAM":
        key = (mechanism, options.aws_region or "")
    else:
        if not options.oauth_token_provider:
            raise TokenProviderError(
                "OAUTHBEARER needs --sasl-oauth-token-provider MODULE:CALLABLE"
            )
        key = (mechanism, options.oauth_token_provider)
    install_oauth_failure_path()
    provider = _providers.get(key)
    if provider is None:
        provider = (
            MskIamTokenProvider(key[1])
            if mechanism == "AWS_MSK_IAM"
            else load_token_provider(key[1])
        )
        _providers[key] = provider
    return provider


def check(options: SecurityOptions) -> None:
    """Build what the clients will need once, so a certificate that does not load or a token
    hook that does not import is a settings error (exit 2), not a failure at the first
    connection. Raises :class:`ValueError` with one line."""
    if uses_tls(options):
        ssl_context(options)
    token_provider(options)


def aiokafka_kwargs(options: SecurityOptions) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producers, consumers, admin clients and connections."""
    kwargs: dict[str, Any] = {"security_protocol": options.protocol}
    if uses_tls(options):
        kwargs["ssl_context"] = ssl_context(options)
    if options.protocol.startswith("SASL"):
        provider = token_provider(options)
        if provider is not None:
            # MSK IAM is OAUTHBEARER on the wire, its token a signed URL.
            kwargs.update(sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=provider)
        else:
            kwargs.update(
                sasl_mechanism=options.sasl_mechanism,
                sasl_plain_username=options.sasl_username,
                sasl_plain_password=options.sasl_password,
            )
    return kwargs


def faust_credentials(options: SecurityOptions) -> Any:
    """Faust's ``broker_credentials`` for the same settings (``None``: plaintext). Faust turns
    them back into the same aiokafka arguments for every client it makes."""
    import faust  # noqa: PLC0415  (the worker's dependency; other commands do not load it)

    if options.protocol == "PLAINTEXT":
        return None
    context = ssl_context(options) if uses_tls(options) else None
    if options.protocol == "SSL":
        return faust.SSLCredentials(context)
    provider = token_provider(options)
    if provider is not None:
        return faust.OAuthCredentials(oauth_cb=provider, ssl_context=context)
    return faust.SASLCredentials(
        username=options.sasl_username,
        password=options.sasl_password,
        ssl_context=context,
        mechanism=options.sasl_mechanism,
    )


# -- refused connections ---------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (aiokafka wraps a TLS alert in "Connection ... closed")."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    return str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)


def describe_refusal(exc: BaseException, options: SecurityOptions | None = None) -> str | None:
    """One line for a connection the brokers refused, or that this client refused, because of
    the security settings: retrying will not help. ``None`` for anything else (a broker that
    is away, a timeout), which may pass."""
    mechanism = options.sasl_mechanism if options is not None else None
    for error in _chain(exc):
        if isinstance(error, TokenProviderError):
            return str(error)
        if isinstance(error, SaslAuthenticationFailed):
            return _auth_failed(error, options)
        if isinstance(error, UnsupportedSaslMechanismError):
            wire = "OAUTHBEARER" if mechanism == "AWS_MSK_IAM" else mechanism
            return (
                f"the broker does not offer SASL mechanism {wire or '(the one asked for)'} on "
                "this listener: check --sasl-mechanism and the port"
            )
        if isinstance(error, IllegalSaslStateError):
            return (
                "the broker refused the SASL handshake: this listener does not expect SASL "
                "(check --security-protocol and the port)"
            )
        if isinstance(error, ssl.SSLCertVerificationError):
            return _untrusted_broker(error, options)
        if isinstance(error, ssl.SSLError):
            reason = str(error.reason or "")
            if reason in _CLIENT_CERT_ALERTS:
                return _client_cert_refused(reason, options)
            if reason in _NOT_TLS:
                return (
                    f"TLS handshake failed ({reason.lower().replace('_', ' ')}): this listener "
                    "does not speak TLS (check --security-protocol and the port)"
                )
    return None


def _auth_failed(error: SaslAuthenticationFailed, options: SecurityOptions | None) -> str:
    said = _reason(error)
    mechanism = options.sasl_mechanism if options is not None else None
    if mechanism in _TOKEN_MECHANISMS:
        assert options is not None
        what = (
            "AWS_MSK_IAM: check the IAM policy of the credentials (kafka-cluster:Connect) and "
            "--aws-region"
            if mechanism == "AWS_MSK_IAM"
            else f"OAUTHBEARER: check the tokens of {options.oauth_token_provider}"
        )
        return f"SASL authentication failed ({said}); {what}"
    who = f" as {options.sasl_username}" if options is not None and options.sasl_username else ""
    return (
        f"SASL authentication failed ({mechanism or 'SASL'}{who}): {said}; check {_PASSWORD_HINT}"
    )


def _untrusted_broker(error: ssl.SSLCertVerificationError, options: SecurityOptions | None) -> str:
    said = _reason(error)
    if "hostname mismatch" in said.lower() or "ip address mismatch" in said.lower():
        return (
            f"TLS: the broker's certificate does not name the address connected to ({said}); "
            "use the host names the brokers advertise"
        )
    cafile = options.ssl_cafile if options is not None else None
    where = (
        f"--ssl-cafile {cafile} does not hold the CA that signed the brokers"
        if cafile
        else "the system CAs do not include the CA that signed the brokers: give --ssl-cafile"
    )
    return f"TLS: the broker's certificate is not trusted ({said}): {where}"


def _client_cert_refused(reason: str, options: SecurityOptions | None) -> str:
    said = reason.lower().replace("_", " ")
    certfile = options.ssl_certfile if options is not None else None
    what = (
        f"--ssl-certfile {certfile} must be signed by a CA the brokers trust, and valid"
        if certfile
        else "this listener requires mutual TLS: give --ssl-certfile and --ssl-keyfile"
    )
    return f"TLS: the broker refused the client certificate ({said}): {what}"
