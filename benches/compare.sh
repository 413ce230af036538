#!/usr/bin/env bash
# Side-by-side whole-build comparison: kiln against buildah, same machine, same run, runs
# alternating so background noise hits both alike. Scenario 1 of issue 7 (the small
# Dockerfile of DESIGN.md: FROM busybox; RUN; COPY .; RUN; CMD), with the base pulled from a
# registry started here on a free 127.0.0.1 port:
#   cold            empty store (kiln: fresh --root; buildah: fresh storage), base pulled
#   cached          nothing changed
#   one-file        one context file changed
#   no-cache        --no-cache (kiln) / --no-cache (buildah), base already local
#
#   benches/compare.sh [RUNS]          (default 7; KILN=path/to/kiln to skip the release build)
# Prints one line per scenario: the median of each builder in ms and the buildah/kiln ratio.
set -euo pipefail
runs=${1:-7}
here=$(cd "$(dirname "$0")/.." && pwd)
need=(buildah skopeo docker-registry busybox)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        buildah skopeo docker-registry busybox-static >/dev/null
fi
if [[ -z ${KILN:-} ]]; then
    (cd "$here" && cargo build --release --locked -q)
    KILN=$here/target/release/kiln
fi
work=$(mktemp -d /var/tmp/kiln-compare.XXXXXX)
reg_pid=
cleanup() {
    [[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# A registry on a free loopback port, serving the busybox base image kiln builds offline.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
bash "$here/fixtures/busybox/make-context.sh" "$work/bb" >/dev/null
"$KILN" build -q --root "$work/seed" -t busybox "$work/bb" >/dev/null
"$KILN" push --root "$work/seed" busybox "$reg/busybox:latest" >/dev/null

# The small Dockerfile of DESIGN.md.
ctx=$work/ctx
mkdir -p "$ctx/src"
for i in $(seq 20); do printf 'file %s\n' "$i" >"$ctx/src/f$i.txt"; done
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $reg/busybox:latest
RUN echo building > /built && mkdir -p /app
COPY . /app
RUN ls /app/src | wc -l > /app/count
CMD ["cat", "/app/count"]
DOCKERFILE

ms() {
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>"$work/last.err" || { echo "failed: $*" >&2; cat "$work/last.err" >&2; exit 1; }
    e=$(date +%s%N)
    echo $(((e - s) / 1000000))
}
kiln_build() { "$KILN" build -q --root "$1" -t app:bench "${@:2}" "$ctx"; }
buildah_build() {
    buildah --root "$1/storage" --runroot "$1/run" --storage-driver overlay bud -q \
        --isolation chroot --tls-verify=false --layers -t app:bench "${@:2}" "$ctx"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A K B
n=0
for r in $(seq "$runs"); do
    n=$((n + 1))
    # cold: empty state each time
    K[cold]+=" $(ms kiln_build "$work/k$n")"
    B[cold]+=" $(ms buildah_build "$work/b$n")"
    # fully cached
    K[cached]+=" $(ms kiln_build "$work/k$n")"
    B[cached]+=" $(ms buildah_build "$work/b$n")"
    # one context file changed
    printf 'changed %s\n' "$r" >"$ctx/src/f1.txt"
    K[one-file]+=" $(ms kiln_build "$work/k$n")"
    printf 'changed %s again\n' "$r" >"$ctx/src/f1.txt"
    B[one-file]+=" $(ms buildah_build "$work/b$n")"
    # --no-cache
    K[no-cache]+=" $(ms kiln_build "$work/k$n" --no-cache)"
    B[no-cache]+=" $(ms buildah_build "$work/b$n" --no-cache)"
    buildah --root "$work/b$n/storage" --runroot "$work/b$n/run" --storage-driver overlay \
        rmi -a -f >/dev/null 2>&1 || true
    grep -o " $work/b$n[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work/k$n" "$work/b$n" 2>/dev/null || true
done
echo "kiln vs buildah $(buildah --version | awk '{print $3}'), $runs runs each, medians in ms, $(date -u +%F), $(nproc) cores"
printf '%-10s %8s %8s %8s\n' scenario kiln buildah ratio
for s in cold cached one-file no-cache; do
    # shellcheck disable=SC2086
    k=$(median ${K[$s]}); b=$(median ${B[$s]})
    printf '%-10s %8s %8s %7.1fx\n' "$s" "$k" "$b" "$(echo "$b / $k" | bc -l)"
done
