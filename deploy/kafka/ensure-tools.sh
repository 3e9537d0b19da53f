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
if [ ${#needed[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "ensure-tools: installing ${needed[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null || true
  $sudo apt-get install -y -q --no-install-recommends "${needed[@]}" >/dev/null
fi
bash "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" fetch
