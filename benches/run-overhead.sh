#!/usr/bin/env bash
# Per-RUN overhead (issue 4's benchmark): a no-op `RUN true` (sandbox set-up, teardown and
# diff) measured as (20 x RUN true) - (no RUN), divided by 20, medians of N builds with
# --no-cache; next to a bare `runc run` of /bin/true in the same run.
#   benches/run-overhead.sh [KILN_BINARY] [RUNS]
set -euo pipefail
kiln=${1:-target/release/kiln}
runs=${2:-11}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/fixtures/busybox/make-context.sh" "$work/bb" >/dev/null
"$kiln" build -q --root "$work/root" -t busybox "$work/bb" >/dev/null
mkdir -p "$work/none" "$work/twenty"
printf 'FROM busybox\nLABEL a=b\n' > "$work/none/Dockerfile"
{ echo "FROM busybox"; for i in $(seq 20); do echo "RUN true # $i"; done; } > "$work/twenty/Dockerfile"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

for runtime in sandbox runc; do
    base=$(for _ in $(seq "$runs"); do time_ms "$kiln" build -q --no-cache --runtime "$runtime" --root "$work/root" "$work/none"; done | median)
    twenty=$(for _ in $(seq "$runs"); do time_ms "$kiln" build -q --no-cache --runtime "$runtime" --root "$work/root" "$work/twenty"; done | median)
    echo "kiln --runtime $runtime: 20 x RUN true ${twenty} ms, no RUN ${base} ms => $(( (twenty - base) / 20 )) ms per RUN"
done

# A bare runc run of /bin/true on the same busybox rootfs.
bundle=$work/bundle
mkdir -p "$bundle/rootfs"
cp -a "$work/bb/rootfs/." "$bundle/rootfs/"
(cd "$bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
bare=$(for i in $(seq "$runs"); do time_ms runc --root "$work/runc-state" run --bundle "$bundle" "bench-$i"; done | median)
echo "bare runc run /bin/true: ${bare} ms"
