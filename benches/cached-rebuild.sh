#!/usr/bin/env bash
# Fully cached rebuild over a 5,000-file context (issue 3's benchmark): builds once to fill
# the cache, then times N fully cached rebuilds and prints the median in milliseconds.
#   benches/cached-rebuild.sh [KILN_BINARY] [RUNS]
set -euo pipefail
kiln=${1:-target/release/kiln}
runs=${2:-21}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/fixtures/busybox/make-context.sh" "$work/bb" >/dev/null
"$kiln" build -q --root "$work/root" -t busybox "$work/bb" >/dev/null
ctx=$work/ctx
mkdir -p "$ctx"
for d in $(seq 0 49); do
    mkdir -p "$ctx/src/d$d"
    for f in $(seq 0 99); do
        printf 'file %s/%s\n%0200d\n' "$d" "$f" 0 > "$ctx/src/d$d/f$f.txt"
    done
done
printf 'FROM busybox\nWORKDIR /app\nCOPY src/ ./src/\nCOPY src/d0/ ./first/\nLABEL bench=1\n' > "$ctx/Dockerfile"
"$kiln" build -q --root "$work/root" -t bench "$ctx" >/dev/null
times=()
for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$kiln" build -q --root "$work/root" -t bench "$ctx" >/dev/null
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "files: $(find "$ctx" -type f | wc -l); fully cached rebuild, $runs runs: median ${sorted[$((runs / 2))]} ms (min ${sorted[0]}, max ${sorted[$((runs - 1))]})"
