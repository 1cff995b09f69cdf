#!/usr/bin/env bash
# One-time set-up of a development/test environment in .venv, on a fresh machine.
#  - creates .venv with the machine's python3 (>= 3.10);
#  - builds (once per machine, cached in ~/.cache/hcs-import/wheels) the patched zeroc-ice 3.6.5
#    wheel that omero-py needs, and installs it;
#  - installs hcs-import in editable mode with the omero and test extras.
# Re-running is cheap: a stamp keyed on pyproject.toml skips the pip step when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

stamp="$VENV/.hcs-import-setup"
want="$(sha256sum pyproject.toml scripts/setup.sh scripts/build_ice_wheel.py | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$VENV/bin/python" -c "import Ice, omero, hcs_import" 2>/dev/null; then
    exit 0
fi

if ! "$VENV/bin/python" -c "import Ice" 2>/dev/null; then
    echo "setup: building or reusing the patched zeroc-ice wheel (first build: ~5-10 min)" >&2
    wheel="$("$VENV/bin/python" scripts/build_ice_wheel.py | tail -n 1)"
    "$VENV/bin/python" -m pip install --quiet "$wheel"
fi
"$VENV/bin/python" -m pip install --quiet -e ".[omero,test]"
echo "$want" > "$stamp"
echo "setup: ready ($VENV)" >&2
