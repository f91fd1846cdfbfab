# Shared by the scripts: install the Python tools into the project's own virtualenv.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SSM_OWNER_VENV:-$ROOT/.venv}"

# asks_for_help ARGS...: true when the arguments ask only for --help or --version, which need
# nothing installed.
asks_for_help() {
  local arg
  for arg in "$@"; do
    case "$arg" in -h|--help|-V|--version) return 0 ;; esac
  done
  return 1
}

# ensure_venv REQUIREMENTS...: create .venv if needed and install the pinned requirements.
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  local req
  for req in "$@"; do
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$req" >&2
  done
  export MOTO_PYTHON="$VENV/bin/python"
  export PATH="$VENV/bin:$PATH"
}

# ensure_judge: install the IAM judge the tests use (pinned by tests/iam-judge/package-lock.json).
ensure_judge() {
  if [ ! -d "$ROOT/tests/iam-judge/node_modules/@cloud-copilot/iam-simulate" ]; then
    echo "==> installing the IAM judge (npm ci in tests/iam-judge)" >&2
    npm ci --prefix "$ROOT/tests/iam-judge" --no-audit --no-fund --loglevel=error >&2
  fi
}
