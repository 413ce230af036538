#!/usr/bin/env bash
# Side-by-side whole-build comparison (issue 7): kiln against buildah and BuildKit (Debian's
# docker.io dockerd, started here by hand), same machine, same run, builders alternating
# (their order rotates every run) so background noise hits all alike. Base images come from a
# registry started here on a free 127.0.0.1 port, serving the busybox image kiln builds offline.
#
# Scenarios:
#   1  DESIGN.md's small Dockerfile (FROM; RUN; COPY .; RUN; CMD):
#        cold (empty state, base pulled), cached (nothing changed), one-file (one context
#        file changed), no-cache (--no-cache, base already local)
#   2  a 5,000-file, ~500 MB context with COPY . /app: cold and cached
#   3  a RUN writing a 1 GB layer (512 MiB from /dev/urandom + 512 MiB of text), --no-cache,
#        timed to an exported image: kiln `-o type=oci`, buildah `bud` + `push oci:`,
#        BuildKit `build` + `docker save` (dockerd 20.10 has no oci exporter); kiln's peak
#        RSS from /usr/bin/time -v
#   4  20 consecutive small RUN steps, --no-cache after one untimed warm-up build:
#        per-RUN overhead = (20 RUNs - no RUN) / 20
#   5  two independent stages each doing ~1.5 s of CPU work, --no-cache (buildah gets
#        --jobs=$(nproc) so it may run stages in parallel too)
#   6  a 100,000-file context of small files (~36 MB) with COPY . /app: cold, cached, and
#        one file changed
#
#   benches/compare.sh [RUNS]      (default 7; or RUNS=N)
# Environment:
#   KILN=path/to/kiln        skip the release build
#   SCENARIOS="1 2 3 4 5 6"  which scenarios to run
#   PEERS="buildah buildkit" which peers to run (BuildKit is skipped, with the reason, when
#                            dockerd does not start)
#   CONTEXT_MB=500 CONTEXT_FILES=5000   scenario 2's context
#   MANY_FILES=100000        scenario 6's file count
#   KEEP=1                   keep the work directory (its path is printed)
#
# Prints, per scenario, the median of each builder in ms and peer/kiln (how many times
# faster kiln is; > 1 means kiln wins), then every raw sample. Installs what it needs with
# apt; stops the registry and dockerd it started and removes everything it made.
set -euo pipefail
runs=${1:-${RUNS:-7}}
scenarios=${SCENARIOS:-1 2 3 4 5 6}
peers=${PEERS:-buildah buildkit}
context_mb=${CONTEXT_MB:-500}
context_files=${CONTEXT_FILES:-5000}
many_files=${MANY_FILES:-100000}
here=$(cd "$(dirname "$0")/.." && pwd)
docker=/usr/bin/docker # Debian's 20.10 client (a newer one may shadow it in /usr/local/bin)
dockerd=${DOCKERD:-/usr/sbin/dockerd}

want() { [[ " $peers " == *" $1 "* ]]; }
has_scenario() { [[ " $scenarios " == *" $1 "* ]]; }

# --- tools -------------------------------------------------------------------------------
pkgs=(buildah skopeo docker-registry busybox-static time bc curl python3)
want buildkit && pkgs+=(docker.io containerd)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    # policy-rc.d keeps packaged services (docker, registry) from starting; we start our own.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ -z ${KILN:-} ]]; then
    (cd "$here" && cargo build --release --locked -q)
    KILN=$here/target/release/kiln
fi

work=$(mktemp -d /var/tmp/kiln-compare.XXXXXX)
reg_pid=
dockerd_pid=
unmount_under() {
    grep -o " $1[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
cleanup() {
    set +e
    if [[ -n $dockerd_pid ]]; then
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$dockerd_pid" 2>/dev/null && kill -9 "$dockerd_pid" 2>/dev/null
        wait "$dockerd_pid" 2>/dev/null
    fi
    if [[ -n $reg_pid ]]; then
        kill "$reg_pid" 2>/dev/null
        wait "$reg_pid" 2>/dev/null
    fi
    unmount_under "$work"
    if [[ -n ${KEEP:-} ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- registry with the busybox base image --------------------------------------------------
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
rm -rf "$work/seed"
base=$reg/busybox:latest

# --- dockerd (BuildKit) --------------------------------------------------------------------
dk=$work/docker
if want buildkit; then
    reason=
    if [[ ! -x $dockerd || ! -x $docker ]]; then
        reason="$dockerd or $docker not installed"
    else
        mkdir -p "$dk"
        "$dockerd" --iptables=false --ip-masq=false --bridge=none --data-root "$dk/data" \
            --exec-root "$dk/exec" -H "unix://$dk/docker.sock" --pidfile "$dk/docker.pid" \
            >"$dk/dockerd.log" 2>&1 &
        dockerd_pid=$!
        export DOCKER_HOST=unix://$dk/docker.sock DOCKER_BUILDKIT=1
        for _ in $(seq 150); do
            "$docker" version >/dev/null 2>&1 && break
            kill -0 "$dockerd_pid" 2>/dev/null || break
            sleep 0.2
        done
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            wait "$dockerd_pid" && status=0 || status=$?
            reason="dockerd exited with status $status: $(tail -3 "$dk/dockerd.log" | tr '\n' ' ')"
            dockerd_pid=
        elif ! "$docker" version >/dev/null 2>&1; then
            reason="dockerd did not answer within 30 s: $(tail -3 "$dk/dockerd.log" | tr '\n' ' ')"
        elif ! "$docker" pull -q "$base" >/dev/null 2>"$dk/pull.err"; then
            reason="dockerd cannot pull $base: $(tail -2 "$dk/pull.err" | tr '\n' ' ')"
        fi
    fi
    if [[ -n $reason ]]; then
        echo "skipping BuildKit: $reason" >&2
        peers=${peers//buildkit/}
    fi
fi
builders=(kiln)
want buildah && builders+=(buildah)
want buildkit && builders+=(buildkit)

# --- contexts ------------------------------------------------------------------------------
ctx1=$work/ctx1
mkdir -p "$ctx1/src"
for i in $(seq 20); do printf 'file %s\n' "$i" >"$ctx1/src/f$i.txt"; done
cat >"$ctx1/Dockerfile" <<DOCKERFILE
FROM $base
RUN echo building > /built && mkdir -p /app
COPY . /app
RUN ls /app/src | wc -l > /app/count
CMD ["cat", "/app/count"]
DOCKERFILE

ctx2=$work/ctx2
if has_scenario 2; then
    # Deterministic content that compresses like a real tree: text, binary-like, random.
    python3 - "$ctx2" "$context_files" "$((context_mb << 20))" <<'PY'
import os, random, sys
root, files, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(2)
words = b"the static fn return error value config layer image build import package struct".split()
text = bytearray()
while len(text) < 4 << 20:
    text += b" ".join(rng.choice(words) for _ in range(8)) + b" %d;\n" % rng.randrange(10**5)
binary = bytearray()
while len(binary) < 4 << 20:
    binary += bytes([rng.choice((0, 0, 0x48, 0x89, 0xe5, 0xc3)), rng.randrange(256), 0, rng.randrange(16)])
noise = os.urandom(4 << 20)
avg = total // files
for i in range(files):
    d = os.path.join(root, "d%02d" % (i % 50), "s%02d" % (i // 50 % 20))
    os.makedirs(d, exist_ok=True)
    n = avg // 4 + rng.randrange(avg * 3 // 2 + 1)
    pool = rng.choice((text, text, binary, binary, noise))
    out = bytearray()
    while len(out) < n:
        at = rng.randrange(len(pool) - 65536)
        out += pool[at:at + min(65536, n - len(out))]
    with open(os.path.join(d, "f%05d.dat" % i), "wb") as f:
        f.write(out)
PY
    printf 'FROM %s\nCOPY . /app\n' "$base" >"$ctx2/Dockerfile"
fi

ctx6=$work/ctx6
if has_scenario 6; then
    # The context benches/scale.sh uses: 100 x 100 directories, files of 8 to 700 bytes.
    python3 "$here/benches/many-files.py" "$ctx6" "$many_files"
    printf 'FROM %s\nCOPY . /app\n' "$base" >"$ctx6/Dockerfile"
fi

ctx3=$work/ctx3
mkdir -p "$ctx3"
cat >"$ctx3/Dockerfile" <<DOCKERFILE
FROM $base
RUN dd if=/dev/urandom of=/random.bin bs=1048576 count=512 2>/dev/null && \\
    yes 'kiln benchmark layer text 0123456789 abcdefghijklmnopqrstuvwxyz' | \\
    dd of=/text.bin bs=1048576 count=512 iflag=fullblock 2>/dev/null
DOCKERFILE

ctx4=$work/ctx4
ctx4none=$work/ctx4none
mkdir -p "$ctx4" "$ctx4none"
{
    echo "FROM $base"
    for i in $(seq 20); do echo "RUN echo step $i > /step$i"; done
} >"$ctx4/Dockerfile"
printf 'FROM %s\nLABEL bench=none\n' "$base" >"$ctx4none/Dockerfile"

ctx5=$work/ctx5
mkdir -p "$ctx5"
cat >"$ctx5/Dockerfile" <<DOCKERFILE
FROM $base AS a
RUN seq 1 8000000 | md5sum > /a
FROM $base AS b
RUN seq 2 8000001 | md5sum > /b
FROM $base
COPY --from=a /a /a
COPY --from=b /b /b
DOCKERFILE

# --- builders ------------------------------------------------------------------------------
# build BUILDER STATE CTX [--no-cache]: one build of CTX, tagged app:bench.
build() {
    local who=$1 state=$2 ctx=$3
    shift 3
    case $who in
    kiln) "$KILN" build -q --root "$state" -t app:bench "$@" "$ctx" ;;
    buildah)
        buildah --root "$state/storage" --runroot "$state/run" --storage-driver overlay bud -q \
            --isolation chroot --tls-verify=false --layers --jobs "$(nproc)" -t app:bench "$@" "$ctx"
        ;;
    buildkit) "$docker" build -q --network none -t app:bench "$@" "$ctx" ;;
    esac
}
# export_build BUILDER STATE CTX OUT: a --no-cache build, then the image exported under OUT.
export_build() {
    local who=$1 state=$2 ctx=$3 out=$4
    case $who in
    kiln) "$KILN" build -q --root "$state" --no-cache -o "type=oci,tar=false,dest=$out" "$ctx" ;;
    buildah)
        build buildah "$state" "$ctx" --no-cache &&
            buildah --root "$state/storage" --runroot "$state/run" --storage-driver overlay \
                push -q app:bench "oci:$out:latest"
        ;;
    buildkit) build buildkit "$state" "$ctx" --no-cache && "$docker" save -o "$out" app:bench ;;
    esac
}
# reset BUILDER STATE: forget every image and all cache.
reset() {
    local who=$1 state=$2
    case $who in
    kiln) rm -rf "$state" ;;
    buildah)
        if [[ -d $state ]]; then
            buildah --root "$state/storage" --runroot "$state/run" --storage-driver overlay \
                rmi -a -f >/dev/null 2>&1 || true
            unmount_under "$state"
            rm -rf "$state"
        fi
        ;;
    buildkit)
        "$docker" image ls -aq | sort -u | xargs -r "$docker" rmi -f >/dev/null 2>&1 || true
        "$docker" builder prune -af >/dev/null 2>&1 || true
        ;;
    esac
}
# pull_base BUILDER STATE: the base image, so --no-cache builds do not time a pull.
pull_base() {
    local who=$1 state=$2
    case $who in
    kiln) "$KILN" pull --root "$state" "$base" ;;
    buildah)
        buildah --root "$state/storage" --runroot "$state/run" --storage-driver overlay \
            pull -q --tls-verify=false "$base"
        ;;
    buildkit) "$docker" pull -q "$base" ;;
    esac
}

# ms CMD...: runs CMD, prints its wall time in ms; stops everything when it fails.
ms() {
    local s e
    s=$(date +%s%N)
    if ! "$@" >/dev/null 2>"$work/last.err"; then
        # One retry, said out loud: buildah 1.28's runc occasionally fails a RUN with
        # "Close_Fd sealing memfd copy: Device or resource busy"; a sample is the retry's time.
        echo "retrying once after a failure of: $*" >&2
        tail -3 "$work/last.err" >&2
        s=$(date +%s%N)
        "$@" >/dev/null 2>"$work/last.err" || {
            echo "failed twice: $*" >&2
            tail -20 "$work/last.err" >&2
            exit 1
        }
    fi
    e=$(date +%s%N)
    echo $(((e - s) / 1000000))
}
# rss_ms CMD...: like ms, and saves the peak RSS (KiB) of CMD in $work/last.rss.
rss_ms() {
    local s e
    s=$(date +%s%N)
    /usr/bin/time -v -o "$work/last.time" "$@" >/dev/null 2>"$work/last.err" || {
        echo "failed: $*" >&2
        tail -20 "$work/last.err" >&2
        exit 1
    }
    e=$(date +%s%N)
    awk -F': ' '/Maximum resident set size/ {print $2}' "$work/last.time" >"$work/last.rss"
    echo $(((e - s) / 1000000))
}

declare -A T # "scenario|builder" -> " ms ms ..."
declare -A RSS
record() { T["$1|$2"]+=" $3"; }
# measure SCENARIO BUILDER CMD...: times CMD and records it (a failure stops the script: the
# assignment carries ms's exit status to set -e).
measure() {
    local key=$1 who=$2 t
    shift 2
    # Flush what earlier builds left to write back (BuildKit's `docker save` does not sync
    # its 0.5 GB tar, kiln fsyncs what it writes), so no builder's time pays for another's.
    sync
    t=$(ms "$@")
    record "$key" "$who" "$t"
}

for r in $(seq "$runs"); do
    # Rotate the order, so no builder always goes first.
    order=("${builders[@]:$(((r - 1) % ${#builders[@]}))}" "${builders[@]:0:$(((r - 1) % ${#builders[@]}))}")
    echo "run $r/$runs (${order[*]})" >&2
    state() { echo "$work/state-$1-$r"; }

    if has_scenario 1; then
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; measure "1 cold" "$b" build "$b" "$(state "$b")" "$ctx1"; done
        for b in "${order[@]}"; do measure "1 cached" "$b" build "$b" "$(state "$b")" "$ctx1"; done
        for b in "${order[@]}"; do
            printf 'changed %s %s\n' "$r" "$b" >"$ctx1/src/f1.txt"
            measure "1 one-file" "$b" build "$b" "$(state "$b")" "$ctx1"
        done
        for b in "${order[@]}"; do measure "1 no-cache" "$b" build "$b" "$(state "$b")" "$ctx1" --no-cache; done
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; done
    fi

    if has_scenario 2; then
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; measure "2 cold" "$b" build "$b" "$(state "$b")" "$ctx2"; done
        for b in "${order[@]}"; do measure "2 cached" "$b" build "$b" "$(state "$b")" "$ctx2"; done
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; done
    fi

    if has_scenario 6; then
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; measure "6 cold" "$b" build "$b" "$(state "$b")" "$ctx6"; done
        for b in "${order[@]}"; do measure "6 cached" "$b" build "$b" "$(state "$b")" "$ctx6"; done
        for b in "${order[@]}"; do
            printf 'changed %s %s\n' "$r" "$b" >"$ctx6/d000/e000/f000000.txt"
            measure "6 one-file" "$b" build "$b" "$(state "$b")" "$ctx6"
        done
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; done
    fi

    if has_scenario 3 || has_scenario 4 || has_scenario 5; then
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; ms pull_base "$b" "$(state "$b")" >/dev/null; done
    fi
    if has_scenario 3; then
        for b in "${order[@]}"; do
            out=$work/export-$b
            rm -rf "$out"
            if [[ $b == kiln ]]; then
                # kiln itself under /usr/bin/time, for its peak RSS (what export_build runs).
                sync
                t=$(rss_ms "$KILN" build -q --root "$(state kiln)" --no-cache -o "type=oci,tar=false,dest=$out" "$ctx3")
                record "3 1GB layer" kiln "$t"
                RSS[kiln]+=" $(cat "$work/last.rss")"
            else
                measure "3 1GB layer" "$b" export_build "$b" "$(state "$b")" "$ctx3" "$out"
            fi
            rm -rf "$out"
        done
        # Drop the 1 GB layers before the next scenario; keep the base.
        for b in "${order[@]}"; do reset "$b" "$(state "$b")"; ms pull_base "$b" "$(state "$b")" >/dev/null; done
    fi
    if has_scenario 4; then
        for b in "${order[@]}"; do
            # One untimed build first: per-step overhead in steady state, not first-use costs
            # (the base's snapshot, cold page cache).
            ms build "$b" "$(state "$b")" "$ctx4" --no-cache >/dev/null
            sync
            none=$(ms build "$b" "$(state "$b")" "$ctx4none" --no-cache)
            sync
            twenty=$(ms build "$b" "$(state "$b")" "$ctx4" --no-cache)
            [[ -n $none && -n $twenty ]] || exit 1
            record "4 20 RUNs" "$b" "$twenty"
            record "4 no RUN" "$b" "$none"
            record "4 per RUN" "$b" "$(((twenty - none) / 20))"
        done
    fi
    if has_scenario 5; then
        for b in "${order[@]}"; do measure "5 two stages" "$b" build "$b" "$(state "$b")" "$ctx5" --no-cache; done
    fi
    for b in "${order[@]}"; do reset "$b" "$(state "$b")"; done
done

# --- report --------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { if (($2 > 0)); then printf '%.1fx' "$(echo "$1 / $2" | bc -l)"; else echo "-"; fi; }
versions="kiln $("$KILN" --version 2>/dev/null | awk '{print $2}')"
want buildah && versions+=", buildah $(buildah --version | awk '{print $3}')"
want buildkit && versions+=", BuildKit in dockerd $("$docker" version -f '{{.Server.Version}}' 2>/dev/null)"
echo
echo "$(date -u +%F) $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $versions"
echo "$runs runs each, medians in ms; peer/kiln = how many times faster kiln is"
header=$(printf '%-14s %9s' scenario kiln)
for b in "${builders[@]:1}"; do header+=$(printf ' %9s' "$b"); done
for b in "${builders[@]:1}"; do header+=$(printf ' %13s' "$b/kiln"); done
echo "$header"
for s in "1 cold" "1 cached" "1 one-file" "1 no-cache" "2 cold" "2 cached" "3 1GB layer" \
    "4 20 RUNs" "4 no RUN" "4 per RUN" "5 two stages" "6 cold" "6 cached" "6 one-file"; do
    [[ -n ${T["$s|kiln"]:-} ]] || continue
    # shellcheck disable=SC2086
    k=$(median ${T["$s|kiln"]})
    line=$(printf '%-14s %9s' "$s" "$k")
    declare -A M=()
    for b in "${builders[@]:1}"; do
        # shellcheck disable=SC2086
        M[$b]=$(median ${T["$s|$b"]})
        line+=$(printf ' %9s' "${M[$b]}")
    done
    for b in "${builders[@]:1}"; do line+=$(printf ' %13s' "$(ratio "${M[$b]}" "$k")"); done
    echo "$line"
done
if [[ -n ${RSS[kiln]:-} ]]; then
    # shellcheck disable=SC2086
    echo "kiln peak RSS exporting the 1 GB layer: $(($(median ${RSS[kiln]}) / 1024)) MiB (median; samples KiB:${RSS[kiln]})"
fi
echo "raw samples (ms):"
for key in "${!T[@]}"; do echo "  $key:${T[$key]}"; done | sort
