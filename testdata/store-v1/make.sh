#!/usr/bin/env bash
# Makes store.tar.gz: a kiln store as kiln wrote it before layers were kept as plain tars
# (commit db48630, the last before "No compression on the build path": every layer a build
# made is a gzip blob in the store and in the cache index). It holds busybox:latest (made
# from fixtures/busybox) and app:1, built from ./context. tests/store_cmds.rs builds on it.
#
#   git worktree add /tmp/kiln-db48630 db48630 && (cd /tmp/kiln-db48630 && cargo build --release)
#   KILN_OLD=/tmp/kiln-db48630/target/release/kiln bash testdata/store-v1/make.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kiln=${KILN_OLD:?the kiln binary of commit db48630}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$here/../../fixtures/busybox/make-context.sh" "$work/busybox" >/dev/null
"$kiln" build -q --root "$work/root" -t busybox:latest "$work/busybox" >/dev/null
"$kiln" build -q --root "$work/root" -t app:1 "$here/context" >/dev/null
# Scratch space and locks are not part of a store's state.
rm -rf "$work/root/tmp"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$work/root" -czf "$here/store.tar.gz" .
echo "wrote $here/store.tar.gz ($(du -h "$here/store.tar.gz" | cut -f1))"
