#!/usr/bin/env bash
# Install what deploy/kafka/kafka.sh and the Kafka integration tests need when it is missing:
# Java and Maven (the broker and its jars), openssl (the secured-broker tests make their TLS
# certificates with it); then fetch the pinned Kafka jars into their cache. Idempotent.
#
# Usage: bash deploy/kafka/ensure-tools.sh
set -euo pipefail
needed=()
command -v java >/dev/null || needed+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || needed+=(maven)
command -v openssl >/dev/null || needed+=(openssl)
here="$(dirname "${BASH_SOURCE[0]}")"
[ ${#needed[@]} -eq 0 ] || bash "$here/../apt-install.sh" "${needed[@]}"
bash "$here/kafka.sh" fetch
