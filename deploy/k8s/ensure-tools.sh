#!/usr/bin/env bash
# Usage: deploy/k8s/ensure-tools.sh [--print]
#
# Builds or installs, when missing, the tools that check the Helm chart (deploy/helm/): helm,
# kubeconform, controller-gen, kube-score and kube-apiserver from the Go module proxy, etcd from
# Debian, the prometheus-operator CRDs (controller-gen over the operator's API module) and the
# Kubernetes JSON schemas (the kubernetes-validate PyPI package, $refs inlined for kubeconform).
# Each is cached under ~/.cache/callcenter-monitor/<tool>-<version>/ and rebuilt only when its
# directory is missing, so a second run takes a second. Every version is pinned here, once.
#
#   --print   after ensuring, print NAME=PATH lines (HELM, KUBECONFORM, KUBE_SCORE,
#             KUBE_APISERVER, ETCD, OPERATOR_CRDS, KUBE_SCHEMAS, KUBERNETES_VERSION) for the tests
set -euo pipefail

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
CONTROLLER_TOOLS_VERSION=v0.23.0
KUBE_SCORE_VERSION=v1.20.0
# kube-apiserver and the schemas kubeconform validates against are of the same release; the
# staging modules (k8s.io/api, …) of release 1.N are tagged v0.N.
KUBERNETES_VERSION=v1.37.2
KUBERNETES_VALIDATE_VERSION=1.37.0
PROMETHEUS_OPERATOR_VERSION=v0.95.2

print=false
case "${1:-}" in
  --print) print=true ;;
  "") ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/callcenter-monitor"
mkdir -p "$cache"
log() { echo "ensure-tools (k8s): $*" >&2; }

# Builds share two cores with everything else on the machine: low priority, two jobs.
export GOFLAGS="-mod=mod -buildvcs=false -p=2"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

# ensure DIR COMMAND...: run COMMAND with $work (a fresh directory) once, then move $work to
# DIR; a lock keeps two concurrent runs (two engineers' make test) from building twice, and a
# build that fails or is interrupted leaves no DIR behind.
ensure() {
  local dir=$1
  shift
  [ -d "$dir" ] && return 0
  exec 9>"$dir.lock"
  flock 9
  if [ ! -d "$dir" ]; then
    work=$(mktemp -d "$dir.tmp.XXXXXX")
    chmod 755 "$work"
    log "building $(basename "$dir") (once; cached in $dir)"
    local start=$SECONDS
    if ! "$@"; then
      rm -rf "$work"
      exec 9>&-
      return 1
    fi
    mv -T "$work" "$dir"
    log "built $(basename "$dir") in $((SECONDS - start)) s"
  fi
  exec 9>&-
}

go_install() {  # go_install PACKAGE@VERSION: into $work/bin
  GOBIN="$work/bin" nice -n 10 go install "$1"
}

build_helm() {
  # As helm's Makefile does: its version, and the Kubernetes release it assumes when no cluster
  # is asked (helm template, lint) taken from the client-go it is built with.
  local gomod client_go pkg=helm.sh/helm/v3
  gomod=$(go mod download -json "$pkg@$HELM_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
  client_go=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")
  local minor=${client_go#v0.}
  minor=${minor%%.*}
  GOBIN="$work/bin" nice -n 10 go install -trimpath -ldflags "-s -w \
    -X $pkg/internal/version.version=$HELM_VERSION -X $pkg/internal/version.gitTreeState=clean \
    -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$minor \
    -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$minor" \
    "$pkg/cmd/helm@$HELM_VERSION"
}

build_kube_apiserver() {
  # `go install k8s.io/kubernetes/cmd/kube-apiserver@…` is refused: the module replaces its
  # staging modules with ./staging directories. A throwaway module requires it and points each
  # staging module the release requires at its published tag instead.
  local staging="v0${KUBERNETES_VERSION#v1}"
  local mod="$work/src"
  mkdir -p "$mod"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module callcenter-monitor/kube-apiserver-build"
    echo
    sed -n 's/^go \(.*\)/go \1/p' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # Only the staging modules the release requires (the sample ones are not published).
    awk '/=> \.\/staging\//{print $1}' "$gomod" | while read -r m; do
      if grep -Eq "^[[:space:]]+$m v0\.0\.0\$" "$gomod"; then
        echo "replace $m => $m $staging"
      fi
    done
  } >"$mod/go.mod"
  # The version the server reports (helm checks a chart's kubeVersion against it), stamped as
  # the release's hack/lib/version.sh does.
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local v="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    v+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    v+=" -X $pkg.gitTreeState=clean"
  done
  (cd "$mod" && nice -n 10 go build -trimpath -ldflags="-s -w$v" -o "$work/bin/kube-apiserver" \
    k8s.io/kubernetes/cmd/kube-apiserver)
  rm -rf "$mod"
}

generate_operator_crds() {
  # The CRDs as the operator defines them: controller-gen over its API module (the module
  # ships the Go types, not the YAML), the same generator and markers the operator releases use.
  local mod="$work/src"
  mkdir -p "$mod"
  cat >"$mod/go.mod" <<EOF
module callcenter-monitor/operator-crds

go 1.24

require github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring $PROMETHEUS_OPERATOR_VERSION
EOF
  local api
  (cd "$mod" && go mod download -json \
    "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$PROMETHEUS_OPERATOR_VERSION" \
    >"$mod/download.json")
  api=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["Dir"])' "$mod/download.json")
  # controller-gen needs a writable module copy whose dependencies resolve.
  cp -r "$api" "$mod/monitoring"
  chmod -R u+w "$mod/monitoring"
  (cd "$mod/monitoring" && go mod download &&
    "$controller_gen" crd:crdVersions=v1,allowDangerousTypes=true paths=./... \
      output:crd:dir="$work/crds")
  rm -rf "$mod"
}

convert_schemas() {
  local dist="$work/dist" python=python3
  # The project's venv has pip for sure; the system Python may not.
  [ -x "$repo/.venv/bin/python" ] && python="$repo/.venv/bin/python"
  "$python" -m pip download --quiet --no-deps --dest "$dist" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  python3 "$repo/scripts/kube_schemas.py" --wheel "$dist"/kubernetes_validate-*.whl \
    --kubernetes-version "$KUBERNETES_VERSION" --output "$work"
  rm -rf "$dist"
}

install_etcd() {
  command -v etcd >/dev/null && return 0
  bash "$repo/deploy/apt-install.sh" etcd-server
}

install_etcd
apiserver_dir="$cache/kube-apiserver-$KUBERNETES_VERSION"
ensure "$apiserver_dir" build_kube_apiserver
helm_dir="$cache/helm-$HELM_VERSION"
ensure "$helm_dir" build_helm
kubeconform_dir="$cache/kubeconform-$KUBECONFORM_VERSION"
ensure "$kubeconform_dir" go_install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
kube_score_dir="$cache/kube-score-$KUBE_SCORE_VERSION"
ensure "$kube_score_dir" go_install "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
controller_gen_dir="$cache/controller-gen-$CONTROLLER_TOOLS_VERSION"
ensure "$controller_gen_dir" go_install \
  "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
controller_gen="$controller_gen_dir/bin/controller-gen"
crds_dir="$cache/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
ensure "$crds_dir" generate_operator_crds
schemas_dir="$cache/kube-schemas-$KUBERNETES_VALIDATE_VERSION"
ensure "$schemas_dir" convert_schemas

if $print; then
  echo "HELM=$helm_dir/bin/helm"
  echo "KUBECONFORM=$kubeconform_dir/bin/kubeconform"
  echo "KUBE_SCORE=$kube_score_dir/bin/kube-score"
  echo "KUBE_APISERVER=$apiserver_dir/bin/kube-apiserver"
  echo "ETCD=$(command -v etcd)"
  echo "OPERATOR_CRDS=$crds_dir/crds"
  echo "KUBE_SCHEMAS=$schemas_dir"
  echo "KUBERNETES_VERSION=$KUBERNETES_VERSION"
fi
