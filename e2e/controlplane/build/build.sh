#!/usr/bin/env bash
# build.sh builds the control-plane binaries Herald's tests run (kube-apiserver, kube-proxy,
# kubectl, kubelet, kube-controller-manager, kube-scheduler and etcd) from source through
# the Go module proxy, at the versions pinned in kube/go.mod and etcd/go.mod, into
#
#   ${HERALD_CACHE:-$HOME/.cache/herald}/bin/<kubernetes version>-<etcd version>/
#
# and the pods lab's runtime (containerd, its runc shim, ctr, and the CNI plugins bridge,
# host-local and loopback), pinned in containerd/go.mod, into
#
#   ${HERALD_CACHE:-$HOME/.cache/herald}/bin/containerd-<version>-cni-<version>/
#
# A binary that is already there is not rebuilt, so a second run takes a second. A cold
# build takes many minutes on 2 cores (docs/testing.md, "The binaries").
#
# Usage: build.sh                 build what is missing, print the binary directory last
#        build.sh --print-dir      print the binary directory without building
#        build.sh --print-pods-dir print the runtime's directory without building
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" CGO_ENABLED=0

module_version() { # module_version DIR MODULE
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

kube_version="$(module_version "$here/kube" k8s.io/kubernetes)"
etcd_version="$(module_version "$here/etcd" go.etcd.io/etcd/server/v3)"
containerd_version="$(module_version "$here/containerd" github.com/containerd/containerd/v2)"
cni_version="$(module_version "$here/containerd" github.com/containernetworking/plugins)"
bin_dir="${HERALD_CACHE:-$HOME/.cache/herald}/bin/${kube_version}-${etcd_version}"
pods_dir="${HERALD_CACHE:-$HOME/.cache/herald}/bin/containerd-${containerd_version}-cni-${cni_version}"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin_dir"
  exit 0
fi
if [[ "${1:-}" == "--print-pods-dir" ]]; then
  echo "$pods_dir"
  exit 0
fi

mkdir -p "$bin_dir" "$pods_dir"
# Two builds at once (two shells running make) would race on the same files: serialise.
exec 9>"$bin_dir/.lock"
if ! flock -n 9; then
  echo "build.sh: another build holds $bin_dir/.lock, waiting for it" >&2
  flock 9
fi

# build DIR LDFLAGS PACKAGE... builds the named binaries of the module in DIR that are
# missing from $out (with the build tags in $tags), in one go build so they share packages.
# Each is built to a temporary name and renamed, so an interrupted build leaves no
# half-written binary behind that a later run would take for a finished one.
build() {
  local dir="$1" ldflags="$2"
  shift 2
  local pkgs=() names=() p
  for p in "$@"; do
    local name="${p##*/}"
    if [[ -x "$out/$name" ]]; then
      echo "build.sh: $name: already built"
      continue
    fi
    pkgs+=("$p")
    names+=("$name")
  done
  ((${#pkgs[@]})) || return 0

  local tmp log start
  tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
  log="$tmp/build.log"
  start=$SECONDS
  echo "build.sh: building ${names[*]} ($(basename "$dir") module, a few minutes when cold)"
  # -v prints every package as it is compiled: count them as progress.
  (cd "$dir" && go build -v -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$tmp/" "${pkgs[@]}") >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null || break
    echo "build.sh:   ... ${names[*]}: $(grep -c . "$log" || true) packages compiled, $((SECONDS - start))s"
  done
  if ! wait "$pid"; then
    grep -v '^[a-zA-Z0-9._~/-]*$' "$log" >&2 || cat "$log" >&2
    rm -rf "$tmp"
    echo "build.sh: building ${names[*]} failed" >&2
    return 1
  fi
  for name in "${names[@]}"; do
    mv "$tmp/$name" "$out/$name"
  done
  rm -rf "$tmp"
  echo "build.sh: built ${names[*]} in $((SECONDS - start))s"
}

# Stamp the versions the binaries report (kubectl version, /version), as Kubernetes'
# own build does; without them they report v0.0.0-master.
kube_minor="${kube_version#v1.}"
kube_minor="${kube_minor%%.*}"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

out="$bin_dir" tags=""
build "$here/etcd" "" github.com/herald-dev/herald/e2e/controlplane/build/etcd
# One go build for all six: kubelet, kube-controller-manager and kube-scheduler share most
# of their packages with kube-apiserver, so together they cost far less than apart.
build "$here/kube" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler

# containerd without cgo: the snapshotters that need it (btrfs, devmapper, zfs) are left
# out; the lab uses overlayfs. runc comes from Debian (.ci/install-deps): it needs
# libseccomp, which a cgo-free runc lacks.
out="$pods_dir" tags="no_btrfs no_devmapper no_zfs"
build "$here/containerd" "-X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr \
  github.com/containernetworking/plugins/plugins/main/bridge \
  github.com/containernetworking/plugins/plugins/ipam/host-local \
  github.com/containernetworking/plugins/plugins/main/loopback

echo "$bin_dir"
