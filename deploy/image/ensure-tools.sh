#!/usr/bin/env bash
# Usage: deploy/image/ensure-tools.sh [--print]
#
# What the image, compose and systemd tests need, each only when missing (idempotent; a second
# run takes about a second): podman, runc and mmdebstrap from Debian; systemd-analyze; the
# Compose Specification JSON schema (compose/config/compose_spec.json of the docker-compose
# 1.29.2 wheel on PyPI, cached in ~/.cache/callcenter-monitor/compose-spec-1.29.2/); and the
# local Debian base image (deploy/image/base-image.sh), since no public registry is reachable
# from these machines.
#
#   --print   after ensuring, print NAME=PATH lines (COMPOSE_SPEC, BASE_IMAGE) for the tests
set -euo pipefail

COMPOSE_SPEC_RELEASE=1.29.2

print=false
case "${1:-}" in
  --print) print=true ;;
  "") ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/callcenter-monitor"
mkdir -p "$cache"
log() { echo "ensure-tools (image): $*" >&2; }

needed=()
command -v podman >/dev/null || needed+=(podman)
command -v runc >/dev/null || needed+=(runc)
command -v mmdebstrap >/dev/null || needed+=(mmdebstrap)
command -v systemd-analyze >/dev/null || needed+=(systemd)
if [ ${#needed[@]} -gt 0 ]; then
  bash "$repo/deploy/apt-install.sh" "${needed[@]}"
fi

spec_dir="$cache/compose-spec-$COMPOSE_SPEC_RELEASE"
if [ ! -f "$spec_dir/compose_spec.json" ]; then
  log "fetching the Compose Specification schema (docker-compose $COMPOSE_SPEC_RELEASE from PyPI)"
  work=$(mktemp -d "$spec_dir.tmp.XXXXXX")
  python=python3
  # The project's venv has pip for sure; the system Python may not.
  [ -x "$repo/.venv/bin/python" ] && python="$repo/.venv/bin/python"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
    "docker-compose==$COMPOSE_SPEC_RELEASE"
  python3 - "$work" <<'EOF'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
(wheel,) = work.glob("docker_compose-*.whl")
with zipfile.ZipFile(wheel) as archive:
    (work / "compose_spec.json").write_bytes(archive.read("compose/config/compose_spec.json"))
wheel.unlink()
EOF
  rm -rf "$spec_dir"
  mv "$work" "$spec_dir"
  chmod 755 "$spec_dir"
fi

# One base image build at a time: two engineers' make test may get here together.
base_tag="${BASE_TAG:-localhost/callcenter-monitor-base:bookworm}"
if ! podman image exists "$base_tag"; then
  exec 9>"$cache/base-image.lock"
  flock 9
  BASE_TAG="$base_tag" bash "$here/base-image.sh"
  exec 9>&-
fi

if $print; then
  echo "COMPOSE_SPEC=$spec_dir/compose_spec.json"
  echo "BASE_IMAGE=$base_tag"
fi
