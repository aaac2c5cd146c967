#!/usr/bin/env bash
# The one GPU command: from a clean checkout on a GPU machine (offline; torch, triton, nvcc, pybind11,
# ninja preinstalled), within one device call of at most 9 minutes:
#
#   timeout 530 bash benchmarks/run_gpu.sh; tar -czf "$OUT/results.tgz" benchmarks/results   # the device call
#   bash benchmarks/run_gpu.sh --dry-run  # anywhere (or MIMKERNELS_GPU_DRY_RUN=1): the CPU part only
#   bash benchmarks/run_gpu.sh --plan     # print the steps in order with their budgets, run nothing
#
# Steps, in this order (what matters first), each under its own time budget (seconds,
# MIMKERNELS_GPU_BUDGET_<STEP> overrides) and all of them under MIMKERNELS_GPU_TOTAL (default 500, so that
# with the tar and the machine's start the call stays under 9 minutes):
#   build     pip install --no-build-isolation --no-deps -e . for this GPU's arch only
#             (MIMKERNELS_CUDA_ARCH_LIST from nvidia-smi's compute_cap; dry run: build_ext --inplace,
#             which leaves the Python environment alone)
#   smoke     python -m mimkernels.info: every op once on every available backend against the torch
#             backend (a minute at most), and nvidia-smi
#   bench     each benchmarks/bench_*.py (or the files in MIMKERNELS_GPU_BENCH) with --benchmark-json, one
#             step and one JSON each, so a file that runs out of time loses only its own results;
#             MIMKERNELS_GPU_BENCH_K selects benchmarks by a pytest -k expression (e.g. "not autotune")
#   report    python -m benchmarks.report on those JSON files: benchmarks.md and roofline-*.png
#   tests     python -m pytest python_tests: the whole suite, gpu tests included, Triton compiled (no
#             TRITON_INTERPRET), with the time left; dry run: MIMKERNELS_GPU_TESTS (default
#             python_tests/test_backends.py)
#   memcheck  compute-sanitizer --tool memcheck over the CUDA tests (-m gpu -k cuda), caching allocator off
#   racecheck compute-sanitizer --tool racecheck over the same tests, when a .cu file uses __shared__
# MIMKERNELS_GPU_STEPS="build,smoke,..." runs a subset. A failed step is recorded and the next one runs;
# the exit status is 1 when a step failed, ran out of time or could not run (no compute-sanitizer).
# Everything (JSON, markdown, PNG, logs, info, summary) goes to benchmarks/results/<gpu-name-slug>/
# (MIMKERNELS_GPU_RESULTS overrides; dry run: build/run_gpu_dry_run/), each file as its step ends:
# summary.txt is rewritten after every step, so a run cut off by the call's limit still returns what
# it had. The last lines printed are the summary table of the steps.
set -u
cd "$(dirname "$0")/.."

DRY_RUN=${MIMKERNELS_GPU_DRY_RUN:-0}
PLAN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
[[ "${1:-}" == "--plan" ]] && PLAN=1
PY=${PYTHON:-python3}
ORDER="build,smoke,bench,report,tests,memcheck,racecheck"
STEPS=",${MIMKERNELS_GPU_STEPS:-$ORDER},"
TOTAL=${MIMKERNELS_GPU_TOTAL:-500}
START=$(date +%s)
DEADLINE=$((START + TOTAL))
unset TRITON_INTERPRET  # GPU: Triton compiles; CPU: python_tests/conftest.py sets it itself

want() { [[ "$STEPS" == *",$1,"* ]]; }
budget() { local var="MIMKERNELS_GPU_BUDGET_${1^^}"; echo "${!var:-$2}"; }
# Default budgets (seconds); each step is also capped by the time left of the total.
declare -A DEFAULT_BUDGET=([build]=120 [smoke]=60 [bench]=200 [report]=30 [tests]=240 [memcheck]=90 [racecheck]=90)
if ((PLAN)); then
    echo "run_gpu.sh plan: total ${TOTAL}s; each step is capped by its budget and by the time left"
    for s in ${ORDER//,/ }; do want "$s" && printf '%-10s %5ss\n' "$s" "$(budget "$s" "${DEFAULT_BUDGET[$s]}")"; done
    exit 0
fi

slug() { tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-+|-+$//g'; }
if [[ "$DRY_RUN" == 1 ]]; then
    DEVICE="dry run (CPU)"
    RESULTS=${MIMKERNELS_GPU_RESULTS:-build/run_gpu_dry_run}
    ARCHS=${MIMKERNELS_CUDA_ARCH_LIST:-9.0}
else
    DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)
    [[ -z "$DEVICE" ]] && DEVICE="unknown GPU"
    RESULTS=${MIMKERNELS_GPU_RESULTS:-benchmarks/results/$(echo "$DEVICE" | slug)}
    ARCHS=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ')
    ARCHS=${ARCHS:-${MIMKERNELS_CUDA_ARCH_LIST:-9.0}}
fi
mkdir -p "$RESULTS"
# The previous run's files, by the names this script gives them (nothing else in the folder).
rm -f "$RESULTS"/bench_*.json "$RESULTS"/bench_*.log "$RESULTS"/benchmarks.md "$RESULTS"/roofline-*.png \
    "$RESULTS"/{build,build_inplace,tests,report,memcheck,racecheck,run_gpu}.log "$RESULTS"/{info,summary}.txt \
    "$RESULTS"/tests.xml

NAMES=() STATUS=() SECONDS_TAKEN=() DETAIL=()
FAILED=0

table() {
    echo "run_gpu.sh on $DEVICE: $(($(date +%s) - START)) s, results in $RESULTS/"
    printf '%-22s %-12s %7s  %s\n' step status seconds detail
    for i in "${!NAMES[@]}"; do
        printf '%-22s %-12s %7s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}" "${DETAIL[$i]:0:90}"
    done
}
record() { NAMES+=("$1"); STATUS+=("$2"); SECONDS_TAKEN+=("$3"); DETAIL+=("$4"); table > "$RESULTS/summary.txt"; }

# step NAME BUDGET LOG CMD...: run CMD with its output in LOG under min(BUDGET, time left) seconds.
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local left=$((DEADLINE - $(date +%s)))
    if ((left < 5 || limit < 1)); then
        record "$name" "SKIPPED" 0 "no time left"
        FAILED=1
        return
    fi
    ((limit > left)) && limit=$left
    echo "== $name (budget ${limit}s): $*" | tee -a "$RESULTS/run_gpu.log"
    local t0=$(date +%s) rc status
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    case $rc in
        0) status="ok" ;;
        5) status="ok" ;;  # pytest: no test selected (e.g. no CUDA tests yet)
        124 | 137) status="TIMEOUT"; FAILED=1 ;;
        *) status="FAILED($rc)"; FAILED=1 ;;
    esac
    # A pytest run's last count line ("3 passed, 1 skipped in 2.1s"), else the log's last line.
    local detail
    detail=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|deselected)|no tests ran' "$log" | tail -n1 | tr -d '=' | sed -E 's/^ +| +$//g')
    [[ -z "$detail" ]] && detail=$(tail -n1 "$log" | cut -c1-70)
    if [[ "$name" == memcheck || "$name" == racecheck ]]; then
        if grep -q "Device not supported" "$log"; then status="UNSUPPORTED"; detail="compute-sanitizer: Device not supported"; fi
    fi
    record "$name" "$status" $(($(date +%s) - t0)) "$detail"
}

skip() { record "$1" "skipped" 0 "$2"; }

PYTEST_TIMEOUT=()
$PY -c "import pytest_timeout" 2>/dev/null && PYTEST_TIMEOUT=(--timeout=120)

if want build; then
    if [[ "$DRY_RUN" == 1 ]]; then
        step build "$(budget build "${DEFAULT_BUDGET[build]}")" "$RESULTS/build.log" \
            env MIMKERNELS_CUDA_ARCH_LIST="$ARCHS" MIMKERNELS_STRICT_BUILD=1 $PY setup.py build_ext --inplace
    else
        step build "$(budget build "${DEFAULT_BUDGET[build]}")" "$RESULTS/build.log" \
            env MIMKERNELS_CUDA_ARCH_LIST="$ARCHS" MIMKERNELS_STRICT_BUILD=1 \
            $PY -m pip install --no-build-isolation --no-deps -e .
        # pip refused (a read-only environment, say): build _C into the source tree, which the steps
        # below import from the repository root. The failed install stays recorded.
        if [[ "${STATUS[-1]}" != ok ]]; then
            step build_inplace "$(budget build "${DEFAULT_BUDGET[build]}")" "$RESULTS/build_inplace.log" \
                env MIMKERNELS_CUDA_ARCH_LIST="$ARCHS" MIMKERNELS_STRICT_BUILD=1 $PY setup.py build_ext --inplace
        fi
    fi
fi

if want smoke; then
    step smoke "$(budget smoke "${DEFAULT_BUDGET[smoke]}")" "$RESULTS/info.txt" \
        bash -c "$PY -m mimkernels.info; rc=\$?; if [[ $DRY_RUN != 1 ]]; then echo; nvidia-smi; fi; exit \$rc"
fi

BENCH_JSON=()
if want bench; then
    BENCH_DEADLINE=$(($(date +%s) + $(budget bench "${DEFAULT_BUDGET[bench]}")))
    for file in ${MIMKERNELS_GPU_BENCH:-benchmarks/bench_*.py}; do
        name=$(basename "$file" .py)
        left=$((BENCH_DEADLINE - $(date +%s)))
        step "$name" "$left" "$RESULTS/$name.log" \
            $PY -m pytest "$file" -q -rs -p no:cacheprovider "${PYTEST_TIMEOUT[@]}" \
            --benchmark-json="$RESULTS/$name.json" --benchmark-columns=median,rounds --benchmark-sort=name \
            ${MIMKERNELS_GPU_BENCH_K:+-k "$MIMKERNELS_GPU_BENCH_K"}
        [[ -f "$RESULTS/$name.json" ]] && BENCH_JSON+=("$RESULTS/$name.json")
    done
fi

if want report; then
    if ((${#BENCH_JSON[@]})); then
        step report "$(budget report "${DEFAULT_BUDGET[report]}")" "$RESULTS/report.log" $PY -m benchmarks.report "${BENCH_JSON[@]}" --out "$RESULTS"
    else
        skip report "no benchmark JSON"
    fi
fi

if want tests; then
    if [[ "$DRY_RUN" == 1 ]]; then TESTS=${MIMKERNELS_GPU_TESTS:-python_tests/test_backends.py}; else TESTS=${MIMKERNELS_GPU_TESTS:-python_tests}; fi
    # shellcheck disable=SC2086  # TESTS is a list of paths
    step tests "$(budget tests "${DEFAULT_BUDGET[tests]}")" "$RESULTS/tests.log" \
        $PY -m pytest $TESTS -q -rfEs -p no:cacheprovider "${PYTEST_TIMEOUT[@]}" --junitxml="$RESULTS/tests.xml"
fi

SANITIZER=$(command -v compute-sanitizer || ls "${CUDA_HOME:-/usr/local/cuda}"/bin/compute-sanitizer 2>/dev/null)
SANITIZE=(-m pytest python_tests -q -m gpu -k cuda -p no:cacheprovider)
for tool in memcheck racecheck; do
    want $tool || continue
    cmd=("${SANITIZER:-compute-sanitizer}" --tool $tool --error-exitcode 1 --print-limit 50 $PY "${SANITIZE[@]}")
    if [[ "$DRY_RUN" == 1 ]]; then
        skip $tool "dry run, not run: ${cmd[*]}"
    elif [[ -z "$SANITIZER" ]]; then
        skip $tool "compute-sanitizer not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin)"; FAILED=1
    elif [[ $tool == racecheck ]] && ! grep -rlq "__shared__" --include='*.cu' csrc; then
        skip $tool "no .cu file uses shared memory"
    else
        # One cudaMalloc per tensor, so that an access past a tensor's end leaves its allocation.
        step $tool "$(budget $tool "${DEFAULT_BUDGET[$tool]}")" "$RESULTS/$tool.log" env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "${cmd[@]}"
    fi
done

{
    if [[ -f "$RESULTS/report.log" ]]; then
        echo "Fastest implementation of each benchmark case (all rows: $RESULTS/benchmarks.md):"
        cat "$RESULTS/report.log"
        echo
    fi
    table
    ((FAILED)) && echo "Some step failed or ran out of time: see its log in $RESULTS/." || echo "All steps passed."
} | tee "$RESULTS/summary.txt"
exit $FAILED
