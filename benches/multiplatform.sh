#!/usr/bin/env bash
# Issue 17's benchmark: a two-platform build (linux/amd64 + linux/arm64, arm64 RUN steps
# through QEMU) against the two single-platform builds it replaces. The Dockerfile is the
# cross-compile shape: a builder stage on the build platform doing native work once, told the
# target by TARGETARCH, and a final stage per platform with a RUN of its own. Every build is
# cold (a fresh store; the base pulled from a registry on 127.0.0.1); prints the medians.
#   benches/multiplatform.sh [KILN_BINARY] [RUNS]
set -euo pipefail
kiln=$(realpath "${1:-target/release/kiln}")
runs=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
python3 "$here/fixtures/multiarch/make-multiarch.py" "$work/fixture"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/v2/" > /dev/null && break
    sleep 0.1
done
base=127.0.0.1:$port/bb-multi:1
skopeo copy --all --dest-tls-verify=false "oci:$work/fixture/layout:latest" "docker://$base" > /dev/null
mkdir -p "$work/ctx"
cat > "$work/ctx/Dockerfile" <<DOCKERFILE
FROM --platform=\$BUILDPLATFORM $base AS build
RUN i=0; while [ \$i -lt 200000 ]; do i=\$((i+1)); done; echo built > /out
ARG TARGETARCH
RUN echo "\$TARGETARCH" > /target
FROM $base
COPY --from=build /out /target /
RUN uname -m > /arch && sha256sum /bin/busybox > /sum
DOCKERFILE

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_build() { # PLATFORMS -> ms
    rm -rf "$work/root"
    sync
    local start end
    start=$(date +%s%N)
    "$kiln" build -q --root "$work/root" --platform "$1" "$work/ctx" > /dev/null
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}
amd=() arm=() both=()
for _ in $(seq "$runs"); do
    amd+=("$(time_build linux/amd64)")
    arm+=("$(time_build linux/arm64)")
    both+=("$(time_build linux/amd64,linux/arm64)")
done
a=$(median "${amd[@]}") b=$(median "${arm[@]}") c=$(median "${both[@]}")
echo "cold builds, $runs runs each, median ms: linux/amd64 $a (${amd[*]}), linux/arm64 $b (${arm[*]}), both $c (${both[*]})"
echo "two-platform build / sum of the single builds: $c / $((a + b)) = $(awk -v c="$c" -v s=$((a + b)) 'BEGIN {printf "%.2f", c / s}')"
