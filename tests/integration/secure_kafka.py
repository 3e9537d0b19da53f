"""A real Kafka broker that requires what managed clusters require: TLS with certificates made
by openssl at test time, SASL (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN, OAUTHBEARER with the broker's
unsecured-JWT validator) and mutual TLS, each on its own listener of one broker (one start).

Listeners (each on a free port of 127.0.0.1):

- ``plaintext``: for test set-up and kafka.sh's readiness check; nothing secured goes there.
- ``sasl_ssl``: SASL over TLS, every mechanism above.
- ``mtls``: TLS, the client must present a certificate the test CA signed.
- ``tls``: TLS, server authentication only (a CA file or the system CAs on the client).
- ``sasl_plaintext``: SCRAM-SHA-512 only, so a client asking for another mechanism is refused.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.services import KAFKA_SH, Kafka, free_port

# Users the broker knows. SCRAM credentials go into the storage at format time; PLAIN users
# are declared in the listener's JAAS configuration.
SCRAM_USERS = {"SCRAM-SHA-512": ("scram512", "scram512-secret"),
               "SCRAM-SHA-256": ("scram256", "scram256-secret")}  # fmt: skip
PLAIN_USER = ("plain-user", "plain-secret")
# The subject the broker's own unsecured OAUTHBEARER login uses (never sent to it by clients).
_BROKER_SUBJECT = "broker"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
_OAUTH_VALIDATOR = (
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured."
    "OAuthBearerUnsecuredValidatorCallbackHandler"
)


@dataclass(frozen=True)
class Certificates:
    """PEM files: the test CA, the broker's key and chain, a client certificate for mutual TLS,
    and from another CA: that CA and a client certificate it signed."""

    ca: Path
    broker: Path  # private key and certificate in one file: Kafka's PEM keystore
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True,
                            text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {result.stderr}")


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    # EC keys: generated in milliseconds, and both Python's ssl and Kafka's PEM store read them.
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    return key, cert


def _leaf(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}{suffix}" for suffix in (".key", ".csr", ".pem"))
    ext = directory / f"{name}.ext"
    ext.write_text(extensions + "\nbasicConstraints=critical,CA:FALSE\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext, cwd=directory)  # fmt: skip
    return cert, key


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "test-ca")
    other_ca = _ca(directory, "other-ca")
    broker_cert, broker_key = _leaf(
        directory, "broker", ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
    )  # fmt: skip
    client = _leaf(directory, "client", ca, "extendedKeyUsage=clientAuth")
    other_client = _leaf(directory, "other-client", other_ca, "extendedKeyUsage=clientAuth")
    broker = directory / "broker-keystore.pem"
    broker.write_text(broker_key.read_text() + broker_cert.read_text())
    return Certificates(ca=ca[1], broker=broker, client_cert=client[0], client_key=client[1],
                        other_ca=other_ca[1], other_client_cert=other_client[0],
                        other_client_key=other_client[1])  # fmt: skip


@dataclass
class SecureKafka(Kafka):
    """The pinned broker with the secured listeners described above."""

    certs: Certificates | None = None
    sasl_ssl_port: int = field(default_factory=free_port)
    mtls_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    sasl_plaintext_port: int = field(default_factory=free_port)

    def address(self, listener: str) -> str:
        ports = {"plaintext": self.port, "sasl_ssl": self.sasl_ssl_port, "mtls": self.mtls_port,
                 "tls": self.tls_port, "sasl_plaintext": self.sasl_plaintext_port}  # fmt: skip
        port = ports[listener]
        return f"127.0.0.1:{port}"

    def extra_config(self) -> str:
        assert self.certs is not None
        listeners = {"PLAINTEXT": self.port, "SASL_SSL": self.sasl_ssl_port,
                     "MTLS": self.mtls_port, "TLS": self.tls_port,
                     "SASL_PLAINTEXT": self.sasl_plaintext_port}  # fmt: skip
        advertised = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items())
        user, password = PLAIN_USER
        sasl_ssl = "listener.name.sasl_ssl"
        lines = [
            f"listeners={advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={advertised}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_SSL:SASL_SSL,MTLS:SSL,TLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.certs.broker}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.certs.ca}",
            "listener.name.mtls.ssl.client.auth=required",
            f"{sasl_ssl}.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER",
            f"{sasl_ssl}.scram-sha-512.sasl.jaas.config={_SCRAM_MODULE}",
            f"{sasl_ssl}.scram-sha-256.sasl.jaas.config={_SCRAM_MODULE}",
            f"{sasl_ssl}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
            f'PlainLoginModule required user_{user}="{password}";',
            f"{sasl_ssl}.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security."
            f'oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="'
            f'{_BROKER_SUBJECT}";',
            f"{sasl_ssl}.oauthbearer.sasl.server.callback.handler.class={_OAUTH_VALIDATOR}",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={_SCRAM_MODULE}",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if self.certs is None:
            self.certs = make_certificates(self.data_dir / "certs")
        config = self.data_dir / "secure.properties"
        config.write_text(self.extra_config())
        scram = []
        for mechanism, (user, password) in SCRAM_USERS.items():
            scram += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        subprocess.run(
            ["bash", str(KAFKA_SH), "start", "--port", str(self.port), "--controller-port",
             str(self.controller_port), "--data-dir", str(self.data_dir), "--extra-config",
             str(config), *scram],
            check=True,
        )  # fmt: skip
