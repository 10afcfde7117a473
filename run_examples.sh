#!/usr/bin/env bash
# Run every example in examples/, in order, and print a one-line summary per example.
# Sets itself up on a fresh machine: creates (or reuses) a virtual environment in
# .venv and installs morula with its example extras (scikit-learn, matplotlib).
#
#   ./run_examples.sh                 # all examples; full output in examples/output/NAME.log
#   ./run_examples.sh -v              # also show each example's output as it runs
#   ./run_examples.sh 01_taylor_sine  # only the examples whose file name contains one of these
#
# Plots are saved (matplotlib, Agg backend) to examples/output/.
# Environment: PYTHON (interpreter used to create .venv, default python3).
set -euo pipefail
cd "$(dirname "$0")"

ensure_venv() {  # ensure_venv EXTRA: .venv exists and has `pip install -e .[EXTRA]` done
    local extra="$1" py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "run_examples.sh: creating .venv with $($py --version 2>&1)"
        "$py" -m venv .venv
    fi
    # The install is redone only when pyproject.toml (or where this checkout lives) changes.
    local key stamp=".venv/.morula-installed-$extra"
    key="$(cat pyproject.toml; pwd)"
    key="$(printf '%s' "$key" | .venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
        echo "run_examples.sh: installing morula[$extra] into .venv (once; this can take a few minutes)"
        .venv/bin/python -m pip install -q -e ".[$extra]"
        echo "$key" > "$stamp"
    fi
}

verbose=0
filters=()
for arg in "$@"; do
    case "$arg" in
        -v|--verbose) verbose=1 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) filters+=("$arg") ;;
    esac
done

ensure_venv examples

export MPLBACKEND=Agg
export MORULA_EXAMPLES_OUTPUT="$PWD/examples/output"
mkdir -p "$MORULA_EXAMPLES_OUTPUT"

failed=0
ran=0
for script in examples/[0-9]*.py; do
    name="$(basename "$script" .py)"
    if [ ${#filters[@]} -gt 0 ]; then
        keep=0
        for f in "${filters[@]}"; do
            [[ "$name" == *"$f"* ]] && keep=1
        done
        [ $keep -eq 1 ] || continue
    fi
    ran=$((ran + 1))
    log="$MORULA_EXAMPLES_OUTPUT/$name.log"
    start=$(date +%s.%N)
    if [ $verbose -eq 1 ]; then
        echo "=== $name"
        set +e
        .venv/bin/python "$script" </dev/null 2>&1 | tee "$log"
        status=${PIPESTATUS[0]}
        set -e
    else
        set +e
        .venv/bin/python "$script" </dev/null >"$log" 2>&1
        status=$?
        set -e
    fi
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$status" -eq 0 ]; then
        # Each example ends by printing a one-line result: show it.
        summary="$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
        printf 'ok    %-24s %5ss  %s\n' "$name" "$secs" "$summary"
    else
        failed=$((failed + 1))
        summary="$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
        printf 'FAIL  %-24s %5ss  %s  (full output: %s)\n' "$name" "$secs" "$summary" "$log"
    fi
done

if [ $ran -eq 0 ]; then
    echo "run_examples.sh: no example matched: ${filters[*]}" >&2
    exit 2
fi
echo "$((ran - failed)) of $ran examples passed; plots and logs are in examples/output/"
[ $failed -eq 0 ]
