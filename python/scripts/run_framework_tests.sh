#!/usr/bin/env bash
# The framework tests (TensorFlow, Keras, PyTorch 2, Lightning, JAX): tests/frameworks, run with
# the interpreter of the framework virtualenv (created when missing, see framework_env.sh).
# Extra arguments go to pytest; when one of them names a file or directory, only that runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$(bash "$here/scripts/framework_env.sh")"
cd "$here"
targets=(tests/frameworks)
for arg in "$@"; do
  if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then targets=(); break; fi
done
exec "$python" -m pytest -q -p no:cacheprovider --timeout=600 "${targets[@]}" "$@"
