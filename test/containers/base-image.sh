#!/usr/bin/env bash
# Builds a stand-in for the official Node 24 image (no registry is reachable here) and `docker import`s it:
# a Debian bookworm minbase rootfs, Node 24's binary and npm under /usr/local as in the official image, and
# the machine's CA bundle (HTTPS to the npm registry inside a container fails without it).
# Usage: base-image.sh TAG NODE_BINARY NPM_DIR CA_BUNDLE      (needs root, debootstrap and a running dockerd)
set -euo pipefail
tag=$1 node_bin=$2 npm_dir=$3 ca_bundle=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

if ! debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  echo "base-image.sh: debootstrap failed (log above)" >&2
  exit 1
fi

install -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
mkdir -p "$root/etc/ssl/certs"
install -m 0644 "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"

# Drop what no container reads (as the official -slim images do); docker provides /dev, /proc and resolv.conf.
rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
  "$root"/var/log/* "$root"/dev/* "$root"/proc/* "$root"/sys/* "$root"/tmp/*
: >"$root/etc/resolv.conf"

chroot "$root" /usr/local/bin/node --version >/dev/null # the binary must run on this rootfs's libc and libstdc++
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  --message 'metrics-relay test stand-in for node:24-bookworm-slim' - "$tag" >/dev/null
echo "$tag"
