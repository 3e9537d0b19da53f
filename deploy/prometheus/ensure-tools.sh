#!/usr/bin/env bash
# Install Prometheus, Alertmanager, promtool and amtool from Debian when they are missing
# (make test and the integration tests need the real binaries). Idempotent.
set -euo pipefail
needed=()
for tool in prometheus promtool; do command -v "$tool" >/dev/null || needed+=(prometheus); done
for tool in prometheus-alertmanager amtool; do
  command -v "$tool" >/dev/null || needed+=(prometheus-alertmanager)
done
[ ${#needed[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${needed[@]}" | sort -u | tr '\n' ' ')
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "ensure-tools: installing $packages" >&2
# No daemon start on install: the tests run their own instances on free ports.
printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
$sudo chmod +x /usr/sbin/policy-rc.d
trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null || true
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $packages >/dev/null
