#!/usr/bin/env bash
# How kiln's cost grows with what it builds (issue 16's scale scenarios). Each scenario is
# built cold (its own empty store, busybox base made offline), then fully cached, then with
# one input changed; every build's wall time and peak RSS (/usr/bin/time -v) are printed,
# medians over RUNS for the cached and changed builds.
#
#   F  contexts of 1,000 / 10,000 / 100,000 small files with `COPY . /app`: a cached rebuild
#      should grow with the file count only through one stat per file — the syscall counts of
#      the 100,000-file cached rebuild (strace -c) show what it does per file
#   S  a 200-step Dockerfile (RUN, ENV, COPY, WORKDIR, LABEL in turn)
#   G  a 50-stage Dockerfile: 49 independent stages (a RUN each), the last one copying from
#      every one of them
#
#   benches/scale.sh [RUNS]        (default 5)
# Environment: KILN=path/to/kiln (default target/release/kiln), SCENARIOS="F S G",
#              FILES="1000 10000 100000", KEEP=1 keeps the work directory.
set -euo pipefail
runs=${1:-${RUNS:-5}}
scenarios=${SCENARIOS:-F S G}
file_counts=${FILES:-1000 10000 100000}
here=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$here/target/release/kiln}
[[ -x $kiln ]] || (cd "$here" && cargo build --release --locked -q)
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/kiln-scale.XXXXXX)
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$work"' EXIT; else echo "work: $work"; fi
has() { [[ " $scenarios " == *" $1 "* ]]; }

"$here/fixtures/busybox/make-context.sh" "$work/bb" >/dev/null

# One build: prints "<ms> <peak RSS MiB>"; a failed build stops the script with its log.
build() {
    local root=$1 ctx=$2 log=$work/last.log
    shift 2
    local start end
    start=$(date +%s%N)
    if ! /usr/bin/time -v -o "$work/time.txt" "$kiln" build -q --root "$root" "$@" "$ctx" \
        >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    end=$(date +%s%N)
    local rss
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$work/time.txt")
    echo "$(((end - start) / 1000000)) $rss"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# Builds cold once, then RUNS cached and RUNS changed builds (`changed_file` is rewritten
# before each changed build); prints one line per kind.
measure() {
    local name=$1 ctx=$2 changed_file=$3
    local root=$work/root-$name
    rm -rf "$root"
    "$kiln" build -q --root "$root" -t busybox "$work/bb" >/dev/null
    read -r cold cold_rss < <(build "$root" "$ctx" -t "$name")
    local cached=() cached_rss=() changed=() changed_rss=()
    for _ in $(seq "$runs"); do
        read -r ms rss < <(build "$root" "$ctx" -t "$name")
        cached+=("$ms") cached_rss+=("$rss")
    done
    for n in $(seq "$runs"); do
        echo "change $n" >"$changed_file"
        read -r ms rss < <(build "$root" "$ctx" -t "$name")
        changed+=("$ms") changed_rss+=("$rss")
    done
    printf '%-28s cold %7d ms %7s MiB | cached %6d ms %7s MiB | changed %6d ms %7s MiB\n' \
        "$name" "$cold" "$cold_rss" "$(median "${cached[@]}")" "$(median "${cached_rss[@]}")" \
        "$(median "${changed[@]}")" "$(median "${changed_rss[@]}")"
}

echo "kiln: $kiln ($("$kiln" --version 2>/dev/null || echo unknown)); $(nproc) cores; runs: $runs"

if has F; then
    for n in $file_counts; do
        ctx=$work/files-$n
        python3 "$here/benches/many-files.py" "$ctx" "$n"
        printf 'FROM busybox\nCOPY . /app\n' >"$ctx/Dockerfile"
        measure "files-$n" "$ctx" "$ctx/d000/e000/f000000.txt"
    done
    if [[ " $file_counts " == *" 100000 "* ]] && command -v strace >/dev/null; then
        echo "syscalls of one fully cached rebuild of the 100,000-file context (strace -f -c):"
        strace -f -c -o "$work/strace.txt" "$kiln" build -q --root "$work/root-files-100000" \
            -t files-100000 "$work/files-100000" >/dev/null 2>&1
        awk 'NR > 2 && $NF != "total" && $4 + 0 >= 1000 {printf "  %-16s %9d calls\n", $NF, $4}' \
            "$work/strace.txt" | sort -k2 -n -r | head -12
    fi
fi

if has S; then
    ctx=$work/steps
    mkdir -p "$ctx"
    echo data >"$ctx/data.txt"
    {
        echo "FROM busybox"
        for i in $(seq 0 199); do
            case $((i % 5)) in
                0) echo "RUN echo step $i > /s$i" ;;
                1) echo "ENV STEP_$i=$i" ;;
                2) echo "COPY data.txt /copies/c$i.txt" ;;
                3) echo "WORKDIR /w$i" ;;
                4) echo "LABEL step$i=$i" ;;
            esac
        done
    } >"$ctx/Dockerfile"
    measure "200-steps" "$ctx" "$ctx/data.txt"
fi

if has G; then
    ctx=$work/stages
    mkdir -p "$ctx"
    echo one >"$ctx/input.txt"
    {
        for i in $(seq 1 49); do
            echo "FROM busybox AS s$i"
            echo "RUN echo stage $i > /out$i"
        done
        echo "FROM busybox AS s50"
        echo "COPY input.txt /input.txt"
        for i in $(seq 1 49); do echo "COPY --from=s$i /out$i /all/out$i"; done
    } >"$ctx/Dockerfile"
    measure "50-stages" "$ctx" "$ctx/input.txt"
fi
