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
packages=$(printf '%s\n' "${needed[@]}" | sort -u)
# shellcheck disable=SC2086
bash "$(dirname "${BASH_SOURCE[0]}")/../apt-install.sh" $packages
