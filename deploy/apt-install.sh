#!/usr/bin/env bash
# Install Debian packages for the tools the tests use, without starting any daemon they ship
# (the tests run their own instances on free ports). Shared by the deploy/*/ensure-tools.sh.
#
# Usage: bash deploy/apt-install.sh PACKAGE...
set -euo pipefail
if [ $# -eq 0 ]; then
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "apt-install: $*" >&2
printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
$sudo chmod +x /usr/sbin/policy-rc.d
trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null || true
$sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
