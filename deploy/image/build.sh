#!/usr/bin/env bash
# Build the callcenter-monitor image with podman from the repository's checkout.
#
#   bash deploy/image/build.sh [--base IMAGE] [--tag TAG] [--extras LIST] [--ca-file FILE]
#                              [-- PODMAN-BUILD-ARGS...]
#
#   --base     BASE_IMAGE (default: the Containerfile's, python:3.11-slim-bookworm; where no
#              public registry is reachable, localhost/callcenter-monitor-base:bookworm from
#              deploy/image/base-image.sh)
#   --tag      image tag (default localhost/callcenter-monitor:<version in pyproject.toml>)
#   --extras   optional extras of pyproject.toml, comma-separated (msk: Amazon MSK IAM sign-in)
#   --ca-file  a CA bundle pip trusts while it installs (a TLS-intercepting proxy's); a build
#              secret, not kept in the image
# Prints the tag on stdout. The version label comes from pyproject.toml, the one place it is
# declared. RUN steps use the host's network (pip reaches PyPI however the host does).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")"
tag="localhost/callcenter-monitor:$VERSION"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) args+=(--build-arg "BASE_IMAGE=$2"); shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --extras) args+=(--build-arg "EXTRAS=$2"); shift 2 ;;
    --ca-file) args+=(--secret "id=pip-ca,src=$2"); shift 2 ;;
    --) shift; args+=("$@"); break ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
done
podman build --quiet --network host --layers -f "$ROOT/deploy/image/Containerfile" \
  --ignorefile "$ROOT/deploy/image/Containerfile.dockerignore" \
  --build-arg "VERSION=$VERSION" --tag "$tag" "${args[@]}" "$ROOT" >&2
echo "$tag"
