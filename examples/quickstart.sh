#!/usr/bin/env bash
# kiln's quick start: install what kiln needs, build it, make the busybox base image from
# Debian's busybox-static (no registry needed), then build the multi-stage example (with
# RUN steps) into kiln's store and an OCI layout, and show the result.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/setup
cargo build --release --locked

root=${KILN_ROOT:-$PWD/target/quickstart/root}
work=$PWD/target/quickstart
mkdir -p "$work"
kiln=target/release/kiln

fixtures/busybox/make-context.sh "$work/busybox"
"$kiln" build --root "$root" -t busybox:latest "$work/busybox"
"$kiln" build --root "$root" -t hello:1.0 -o "type=oci,tar=false,dest=$work/hello-oci" examples/multi-stage
"$kiln" images --root "$root"
echo "OCI layout of hello:1.0 in $work/hello-oci (try: skopeo inspect oci:$work/hello-oci:1.0)"
