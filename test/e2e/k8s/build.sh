#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and helm from the Go module proxy into
#   ${METRICS_RELAY_CACHE:-$HOME/.cache/metrics-relay}/k8s-<version>/bin
# and prints that directory as the last line of stdout. Idempotent: when the binaries exist and the
# stamp file matches the requested versions it returns at once. Progress goes to stderr.
# GOMODCACHE/GOCACHE are left at Go's defaults so a CI cache of them speeds up a cold build.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}   # newest release whose go.mod says go 1.26 (builds with GOTOOLCHAIN=local)
HELM_VERSION=${HELM_VERSION:-4.3.1}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false GO111MODULE=on

CACHE=${METRICS_RELAY_CACHE:-$HOME/.cache/metrics-relay}
DIR=$CACHE/k8s-$K8S_VERSION
BIN=$DIR/bin
STAMP="k8s=v$K8S_VERSION helm=v$HELM_VERSION"

have_all() {
  for b in etcd kube-apiserver kube-controller-manager helm; do [ -x "$BIN/$b" ] || return 1; done
  [ "$(cat "$BIN/.stamp" 2>/dev/null)" = "$STAMP" ]
}
if have_all; then
  echo "$BIN"
  exit 0
fi

log() { echo "[k8s-build] $*" >&2; }
command -v go >/dev/null || { echo "go not found in PATH" >&2; exit 1; }
start=$SECONDS
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9   # parallel invocations wait for one build
if have_all; then echo "$BIN"; exit 0; fi

MOD=$DIR/wrapper
TMPBIN=$DIR/bin.tmp
rm -rf "$MOD" "$TMPBIN"
mkdir -p "$MOD" "$TMPBIN"
cd "$MOD"

# 1) k8s.io/kubernetes' own go.mod: staging modules (required at the fake v0.0.0), etcd version, godebug line.
KMOD=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$KMOD" ] || { echo "cannot download k8s.io/kubernetes@v$K8S_VERSION" >&2; exit 1; }
STAGING=$( { grep -Eo 'k8s\.io/[a-z0-9-]+ => \./staging' "$KMOD" | cut -d' ' -f1
             grep -E '^[[:space:]]*k8s\.io/[a-z0-9-]+ v0\.0\.0([[:space:]]|$)' "$KMOD" | awk '{print $1}'; } | sort -u)
ETCD_VERSION=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$KMOD")
[ -n "$ETCD_VERSION" ] || { echo "no go.etcd.io/etcd/server/v3 in $KMOD" >&2; exit 1; }
GOLINE=$(grep -m1 -E '^go [0-9]' "$KMOD")
# The wrapper's `tool` directives need go >= 1.24; older releases (1.32: go 1.23.0) keep their runtime defaults
# through their own godebug line, copied below.
case "$GOLINE" in "go 1.1"[0-9]* | "go 1.2"[0-3] | "go 1.2"[0-3].*) GOLINE="go 1.24.0" ;; esac
GODEBUG_LINES=$(grep -E '^godebug ' "$KMOD" || true)
S=v0.${K8S_VERSION#1.}
log "k8s v$K8S_VERSION (staging $S, $(echo "$STAGING" | wc -l) modules), etcd $ETCD_VERSION, helm v$HELM_VERSION"

# 2) wrapper module: k8s + the etcd server k8s itself depends on (same module graph, shared build cache).
{
  echo 'module local/k8sbin'; echo; echo "$GOLINE"; echo
  [ -n "$GODEBUG_LINES" ] && { echo "$GODEBUG_LINES"; echo; }
  echo 'tool ('
  echo '	go.etcd.io/etcd/server/v3'
  echo '	k8s.io/kubernetes/cmd/kube-apiserver'
  echo '	k8s.io/kubernetes/cmd/kube-controller-manager'
  echo ')'; echo
  echo 'require ('
  echo "	k8s.io/kubernetes v$K8S_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ')'; echo
  echo 'replace ('; for m in $STAGING; do echo "	$m => $m $S"; done; echo ')'
} > go.mod
log "go mod tidy"
# A staging module whose exact version the proxy does not serve (seen: k8s.io/endpointslice v0.32.13) is pinned to
# the newest patch of the same minor that it does serve, then tidy runs again. Each fallback is logged.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if go mod tidy 2>"$DIR/tidy.log"; then break; fi
  missing=$(grep -oE "k8s\.io/[a-z0-9-]+@$S: reading [^ ]+: (403|404|410)" "$DIR/tidy.log" | head -1 | cut -d@ -f1)
  [ -n "$missing" ] || { cat "$DIR/tidy.log" >&2; exit 1; }
  minor=${S%.*}
  fallback=$(cd "$DIR" && go list -m -versions "$missing" | tr ' ' '\n' | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -t. -k3 -n | tail -1)
  [ -n "$fallback" ] && [ "$fallback" != "$S" ] || { echo "no $minor.x of $missing on the proxy" >&2; cat "$DIR/tidy.log" >&2; exit 1; }
  log "the proxy does not serve $missing $S; using $fallback"
  sed -i "s#^\t$missing => $missing $S\$#\t$missing => $missing $fallback#" go.mod
done
[ "$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" = "$ETCD_VERSION" ] || log "warning: etcd version moved by MVS"

# 3) build. gitMinor must be the bare minor number.
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
PKG=k8s.io/component-base/version
LD="-s -w -X $PKG.gitVersion=v$K8S_VERSION -X $PKG.gitMajor=1 -X $PKG.gitMinor=$MINOR -X $PKG.gitTreeState=clean"
LD="$LD -X $PKG.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "building etcd"
go build -trimpath -ldflags "-s -w" -o "$TMPBIN/etcd" go.etcd.io/etcd/server/v3
log "building kube-apiserver, kube-controller-manager"
go build -trimpath -ldflags "$LD" -o "$TMPBIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager

# 4) helm in its own module graph (it pins its own k8s.io/* versions; go install works: no replace directives).
log "building helm"
GOBIN=$TMPBIN go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION" \
  "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION"

"$TMPBIN/kube-apiserver" --version >&2
"$TMPBIN/etcd" --version | head -1 >&2
echo "$STAMP" > "$TMPBIN/.stamp"
rm -rf "$BIN"
mv "$TMPBIN" "$BIN"
log "cold build took $((SECONDS - start))s"
echo "$BIN"
