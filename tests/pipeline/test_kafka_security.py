"""Security settings as aiokafka's arguments and Faust's credentials, a certificate that does
not load as a settings error, and a refused connection as one line that says what to check."""

from __future__ import annotations

import ssl
import subprocess
import sys
import types
from pathlib import Path

import pytest
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from monitor.pipeline import kafka_security as ks
from monitor.pipeline.kafka_auth import CallableTokenProvider, MskIamTokenProvider
from monitor.pipeline.settings import KafkaSecurity
from tests.integration.secure_kafka import Certificates, make_certificates

TEST_TOKENS = "tests.integration.oauth_token:token"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def subjects(context: ssl.SSLContext) -> set[str]:
    return {dict(item[0] for item in ca["subject"])["commonName"] for ca in context.get_ca_certs()}


def test_plaintext() -> None:
    assert ks.aiokafka_kwargs(KafkaSecurity()) == {"security_protocol": "PLAINTEXT"}
    assert ks.faust_credentials(KafkaSecurity()) is None


def test_mutual_tls(certs: Certificates) -> None:
    security = KafkaSecurity(protocol="SSL", ssl_cafile=str(certs.ca),
                             ssl_certfile=str(certs.client_cert),
                             ssl_keyfile=str(certs.client_key))  # fmt: skip
    kwargs = ks.aiokafka_kwargs(security)
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    context = kwargs["ssl_context"]
    assert kwargs["security_protocol"] == "SSL"
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert subjects(context) == {"test-ca"}
    faust_kwargs = credentials_to_aiokafka_auth(ks.faust_credentials(security))
    assert faust_kwargs["security_protocol"] == "SSL"
    assert subjects(faust_kwargs["ssl_context"]) == {"test-ca"}


def test_the_system_cas_move_with_ssl_cert_file(
    certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.other_ca))
    context = ks.aiokafka_kwargs(KafkaSecurity(protocol="SSL"))["ssl_context"]
    assert subjects(context) == {"other-ca"}


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_scram(protocol: str, certs: Certificates) -> None:
    security = KafkaSecurity(protocol=protocol, sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="alice", sasl_password="s3cret",
                             ssl_cafile=str(certs.ca))  # fmt: skip
    kwargs = ks.aiokafka_kwargs(security)
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("alice", "s3cret")
    assert ("ssl_context" in kwargs) is (protocol == "SASL_SSL")
    faust_kwargs = credentials_to_aiokafka_auth(ks.faust_credentials(security))
    assert faust_kwargs["security_protocol"] == protocol
    assert faust_kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert faust_kwargs["sasl_plain_password"] == "s3cret"
    assert (faust_kwargs["ssl_context"] is not None) is (protocol == "SASL_SSL")


def test_oauthbearer_hook_is_loaded_once() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
                             oauth_token_provider=TEST_TOKENS)  # fmt: skip
    kwargs = ks.aiokafka_kwargs(security)
    assert (
        ks.aiokafka_kwargs(security)["sasl_oauth_token_provider"]
        is kwargs["sasl_oauth_token_provider"]
    )
    provider = kwargs["sasl_oauth_token_provider"]
    assert isinstance(provider, CallableTokenProvider)
    assert kwargs["sasl_mechanism"] == "OAUTHBEARER"
    assert "sasl_plain_password" not in kwargs
    faust_kwargs = credentials_to_aiokafka_auth(ks.faust_credentials(security))
    assert faust_kwargs["sasl_oauth_token_provider"] is provider
    assert faust_kwargs["security_protocol"] == "SASL_SSL"


def test_msk_iam_is_oauthbearer_on_the_wire() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="AWS_MSK_IAM",
                             aws_region="us-east-2")  # fmt: skip
    kwargs = ks.aiokafka_kwargs(security)
    assert kwargs["sasl_mechanism"] == "OAUTHBEARER"
    provider = kwargs["sasl_oauth_token_provider"]
    assert isinstance(provider, MskIamTokenProvider)
    assert provider.region == "us-east-2"
    faust_kwargs = credentials_to_aiokafka_auth(ks.faust_credentials(security))
    assert faust_kwargs["sasl_mechanism"] == "OAUTHBEARER"


def test_a_token_hook_that_does_not_import_fails_the_check() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
                             oauth_token_provider="nowhere_to_be_found:token")  # fmt: skip
    with pytest.raises(ValueError, match="cannot import nowhere_to_be_found"):
        ks.check(security)


def test_the_check_of_plaintext_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A module that fails on import: plaintext settings must not touch the hook.
    monkeypatch.setitem(sys.modules, "broken_hook", types.ModuleType("broken_hook"))
    ks.check(KafkaSecurity(oauth_token_provider="broken_hook:missing"))


# -- certificates that do not load -----------------------------------------------------------


def test_a_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ks.SecurityConfigError, match=f"--ssl-cafile {bogus}: not a readable PEM"):
        ks.check(KafkaSecurity(protocol="SSL", ssl_cafile=str(bogus)))


def test_a_key_that_does_not_match_the_certificate(certs: Certificates) -> None:
    security = KafkaSecurity(protocol="SSL", ssl_certfile=str(certs.client_cert),
                             ssl_keyfile=str(certs.other_client_key))  # fmt: skip
    with pytest.raises(ks.SecurityConfigError, match="belong together") as e:
        ks.check(security)
    assert str(certs.client_cert) in str(e.value) and "\n" not in str(e.value)


def test_an_encrypted_key(certs: Certificates, tmp_path: Path) -> None:
    encrypted = tmp_path / "client-encrypted.key"
    subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                    "-in", str(certs.client_key), "-out", str(encrypted),
                    "-passout", "pass:key-secret"], check=True)  # fmt: skip
    base = {"protocol": "SSL", "ssl_cafile": str(certs.ca),
            "ssl_certfile": str(certs.client_cert), "ssl_keyfile": str(encrypted)}  # fmt: skip
    # Without a password: an error that names the settings, never a prompt on the terminal.
    with pytest.raises(ks.SecurityConfigError, match="MONITOR_SSL_KEY_PASSWORD"):
        ks.check(KafkaSecurity(**base))  # type: ignore[arg-type]
    with pytest.raises(ks.SecurityConfigError, match="is its password right"):
        ks.check(KafkaSecurity(**base, ssl_key_password="wrong"))  # type: ignore[arg-type]
    ks.check(KafkaSecurity(**base, ssl_key_password="key-secret"))  # type: ignore[arg-type]


# -- refused connections ---------------------------------------------------------------------

SCRAM = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                      sasl_username="alice", sasl_password="x")  # fmt: skip


def ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()} (_ssl.c:2580)")
    error.reason = reason
    return error


def closed_because(cause: BaseException) -> KafkaConnectionError:
    """As aiokafka reports a TLS alert that arrives after the handshake (TLS 1.3)."""
    error = KafkaConnectionError("Connection at 127.0.0.1:9094 closed")
    error.__cause__ = cause
    return error


def test_wrong_password() -> None:
    line = ks.describe_refusal(
        SaslAuthenticationFailed("Authentication failed during authentication due to invalid "
                                 "credentials with SASL mechanism SCRAM-SHA-512"), SCRAM,
    )  # fmt: skip
    assert line == (
        "SASL authentication failed (SCRAM-SHA-512 as alice): Authentication failed during "
        "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512; check "
        "--sasl-username, and MONITOR_SASL_PASSWORD or --sasl-password-file"
    )


def test_a_token_the_broker_refuses() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
                             oauth_token_provider="tokens:fetch")  # fmt: skip
    line = ks.describe_refusal(SaslAuthenticationFailed("invalid_token"), security)
    assert line == (
        "SASL authentication failed (invalid_token); OAUTHBEARER: check the tokens of tokens:fetch"
    )


def test_a_mechanism_the_listener_does_not_offer() -> None:
    line = ks.describe_refusal(UnsupportedSaslMechanismError("<conn>"), SCRAM)
    assert line == (
        "the broker does not offer SASL mechanism SCRAM-SHA-512 on this listener: check "
        "--sasl-mechanism and the port"
    )
    assert "SASL" in str(ks.describe_refusal(IllegalSaslStateError("<conn>"), SCRAM))


def test_an_untrusted_broker() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "unable to get local issuer certificate"
    with_ca = KafkaSecurity(protocol="SSL", ssl_cafile="/etc/kafka/ca.pem")
    assert ks.describe_refusal(error, with_ca) == (
        "TLS: the broker's certificate is not trusted (unable to get local issuer certificate): "
        "--ssl-cafile /etc/kafka/ca.pem does not hold the CA that signed the brokers"
    )
    assert "the system CAs do not include" in str(
        ks.describe_refusal(error, KafkaSecurity(protocol="SSL"))
    )
    error.verify_message = "Hostname mismatch, certificate is not valid for 'kafka-1'."
    assert "does not name the address" in str(ks.describe_refusal(error, with_ca))


def test_a_refused_client_certificate_behind_a_closed_connection() -> None:
    mtls = KafkaSecurity(protocol="SSL", ssl_certfile="/certs/client.pem",
                         ssl_keyfile="/certs/client.key")  # fmt: skip
    line = ks.describe_refusal(closed_because(ssl_error("SSLV3_ALERT_CERTIFICATE_UNKNOWN")), mtls)
    assert line == (
        "TLS: the broker refused the client certificate (sslv3 alert certificate unknown): "
        "--ssl-certfile /certs/client.pem must be signed by a CA the brokers trust, and valid"
    )
    none = ks.describe_refusal(closed_because(ssl_error("SSLV3_ALERT_BAD_CERTIFICATE")),
                               KafkaSecurity(protocol="SSL"))  # fmt: skip
    assert none is not None and "requires mutual TLS" in none


def test_a_listener_that_does_not_speak_tls() -> None:
    line = ks.describe_refusal(ssl_error("WRONG_VERSION_NUMBER"), KafkaSecurity(protocol="SSL"))
    assert line is not None and "does not speak TLS" in line


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        closed_because(ConnectionResetError()),
    ],
)
def test_a_broker_that_is_away_is_no_refusal(error: BaseException) -> None:
    # These may pass: the callers retry them until their time is up.
    assert ks.describe_refusal(error, SCRAM) is None
