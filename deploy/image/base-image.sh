#!/usr/bin/env bash
# Make a Debian bookworm base image with Python 3.11 from the apt mirror and import it into
# podman, for machines that cannot pull python:3.11-slim from a public registry. It holds what
# that image holds and our Containerfile relies on (python3 with venv, CA certificates, netbase,
# tzdata, LANG=C.UTF-8), so the same Containerfile builds on either:
#
#   bash deploy/image/base-image.sh [--force]
#   bash deploy/image/build.sh --base localhost/callcenter-monitor-base:bookworm
#
# --force rebuilds an image that exists already. Environment:
#   BASE_TAG       the tag to import as (default localhost/callcenter-monitor-base:bookworm)
#   DEBIAN_MIRROR  the Debian mirror (default http://deb.debian.org/debian; security updates
#                  come from its -security sibling)
set -euo pipefail

BASE_TAG="${BASE_TAG:-localhost/callcenter-monitor-base:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) echo "usage: base-image.sh [--force]" >&2; exit 2 ;;
esac

if [[ $force -eq 0 ]] && podman image exists "$BASE_TAG"; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "base-image: building $BASE_TAG from $DEBIAN_MIRROR ($SUITE)" >&2
# minbase: essential packages and apt only. Manuals, docs and locales other than C.UTF-8's
# are left out, as in Docker's Debian slim images.
mmdebstrap --quiet --variant=minbase --format=tar \
  --include=python3,python3-venv,ca-certificates,netbase,tzdata \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
  "$SUITE" "$work/rootfs.tar" \
  "deb $DEBIAN_MIRROR $SUITE main" \
  "deb $DEBIAN_MIRROR $SUITE-updates main" \
  "deb ${DEBIAN_MIRROR%/debian}/debian-security $SUITE-security main"
podman import --quiet \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "Debian $SUITE minbase with python3, from $DEBIAN_MIRROR by deploy/image/base-image.sh" \
  "$work/rootfs.tar" "$BASE_TAG" >/dev/null
echo "base-image: $BASE_TAG ready" >&2
