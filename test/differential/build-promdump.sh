#!/usr/bin/env bash
# Builds promdump (test/differential/promdump: Prometheus's own textparse, from the Go module proxy) into
#   ${METRICS_RELAY_CACHE:-$HOME/.cache/metrics-relay}/promdump-<hash>/promdump
# where <hash> is that of its go.mod, go.sum and main.go, and prints the binary's path as the last line of
# stdout. Idempotent: when that binary exists it returns at once. Progress goes to stderr.
# GOMODCACHE/GOCACHE are left at Go's defaults so a CI cache of them speeds up a cold build.
set -euo pipefail

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false GO111MODULE=on

SRC=$(cd "$(dirname "$0")/promdump" && pwd)
HASH=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-16)
CACHE=${METRICS_RELAY_CACHE:-$HOME/.cache/metrics-relay}
DIR=$CACHE/promdump-$HASH
BIN=$DIR/promdump

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

log() { echo "[promdump-build] $*" >&2; }
command -v go >/dev/null || { echo "go not found in PATH: the differential parser test needs Go (see README.md (npm test needs Go 1.26))" >&2; exit 1; }
start=$SECONDS
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9   # parallel invocations wait for one build
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

log "building $SRC with $(go version | cut -d' ' -f3) (module download and compile; cached afterwards)"
cd "$SRC"
# -mod=readonly: go.sum is committed; a build never rewrites it.
go build -mod=readonly -trimpath -ldflags "-s -w" -o "$BIN.tmp" .
mv "$BIN.tmp" "$BIN"
log "built in $((SECONDS - start))s: $BIN"
echo "$BIN"
