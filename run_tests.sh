#!/usr/bin/env bash
# Run morula's test suite. Sets itself up on a fresh machine: creates (or reuses)
# a virtual environment in .venv and installs morula with its test extras.
#
#   ./run_tests.sh                          # the whole suite, 2 workers
#   ./run_tests.sh tests/test_examples.py   # a subset; any pytest arguments pass through
#   ./run_tests.sh -k taylor -x
#
# Environment: PYTHON (interpreter used to create .venv, default python3).
set -euo pipefail
cd "$(dirname "$0")"

ensure_venv() {  # ensure_venv EXTRA: .venv exists and has `pip install -e .[EXTRA]` done
    local extra="$1" py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "run_tests.sh: creating .venv with $($py --version 2>&1)"
        "$py" -m venv .venv
    fi
    # The install is redone only when pyproject.toml (or where this checkout lives) changes.
    local key stamp=".venv/.morula-installed-$extra"
    key="$(cat pyproject.toml; pwd)"
    key="$(printf '%s' "$key" | .venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
        echo "run_tests.sh: installing morula[$extra] into .venv (once; this can take a few minutes)"
        .venv/bin/python -m pip install -q -e ".[$extra]"
        echo "$key" > "$stamp"
    fi
}

ensure_venv test
if [ $# -eq 0 ]; then
    set -- tests
fi
exec .venv/bin/python -m pytest -n 2 "$@"
