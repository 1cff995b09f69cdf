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

# The report test opens the HTML report in a real headless browser: Debian's chromium, when we may install it.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "setup: installing Debian's chromium for the report test" >&2
    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
        apt-get install -y -q chromium >/dev/null 2>&1; }) || echo "setup: chromium could not be installed" >&2
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
