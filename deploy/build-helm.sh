#!/usr/bin/env bash
# Build the pinned helm from its Go module, once, and print the binary's path.
#
#   deploy/build-helm.sh            # -> .elevate/tools/helm-v3.22.0/helm
#
# Needs only Go and the Go module proxy (no release download from elsewhere); a second
# call finds the binary and builds nothing. The flags are those of helm's own Makefile:
# its version, and the Kubernetes version it assumes when there is no cluster (the
# minor of the k8s.io/client-go it is built with), which `helm template` and
# `helm lint` check a chart's kubeVersion against.
set -euo pipefail

HELM_VERSION="v3.22.0"
KUBE_MINOR="37"  # helm v3.22.0 is built with k8s.io/client-go v0.37

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${ELEVATE_TOOLS:-$root/.elevate/tools}/helm-$HELM_VERSION"
if [[ -x "$dest/helm" ]]; then
    echo "$dest/helm"
    exit 0
fi
if ! command -v go >/dev/null; then
    echo "build-helm: 'go' is not on PATH; install Go (1.24 or newer) to build helm $HELM_VERSION" >&2
    exit 1
fi

mkdir -p "$dest"
staging="$(mktemp -d "$dest.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$KUBE_MINOR"
done
echo "build-helm: building helm $HELM_VERSION from its Go module (a few minutes the first time)" >&2
CGO_ENABLED=0 GOBIN="$staging" go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
# Moved into place only when complete, so an interrupted build is never taken for one.
mv "$staging/helm" "$dest/helm"
echo "$dest/helm"
