#!/usr/bin/env bash
# The framework tests (TensorFlow, Keras, PyTorch 2, Lightning, JAX): tests/frameworks, run with
# the interpreter of the framework virtualenv (created when missing, see framework_env.sh).
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$(bash "$here/scripts/framework_env.sh")"
cd "$here"
exec "$python" -m pytest -q -p no:cacheprovider --timeout=600 tests/frameworks "$@"
