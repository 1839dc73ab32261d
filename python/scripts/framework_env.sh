#!/usr/bin/env bash
# Creates (when missing) the virtualenv the framework tests and the peer bench run in, from
# python/requirements/frameworks.txt, and prints its interpreter's path on stdout.
#
#   CAIRN_FRAMEWORK_VENV  where the virtualenv lives (default: ~/.cache/cairn/frameworks-<hash of
#                         the requirements file>, so a changed pin list gets a fresh one)
#   CAIRN_VENV_PYTHON     the interpreter it is made from (default: python3 on PATH, >= 3.9)
#
# pip's default index may be unreachable (it is on the machines this project is built on) and pip
# then waits on it for minutes: when pip is configured with local (file://) indexes, they are
# passed as --index-url/--extra-index-url so nothing else is asked. Elsewhere pip's own settings hold.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$here/requirements/frameworks.txt"
base_python="${CAIRN_VENV_PYTHON:-}"
if [[ -z "$base_python" ]]; then
  # the local wheels are built for CPython 3.11: prefer a python3.11 (pyenv's, then any on PATH)
  for candidate in "${HOME:-/root}"/.pyenv/versions/3.11*/bin/python3 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then base_python="$candidate"; break; fi
  done
fi
hash="$(sha256sum "$requirements" | cut -c1-12)"
venv="${CAIRN_FRAMEWORK_VENV:-${HOME:-/root}/.cache/cairn/frameworks-$hash}"
marker="$venv/.cairn-installed-$hash"

if [[ ! -f "$marker" ]]; then
  "$base_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else "python >= 3.9 needed")'
  if ! "$base_python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian's python3 makes virtualenvs only with its python3-venv package
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      echo "cairn: $base_python cannot make a virtualenv (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  echo "cairn: creating the framework virtualenv $venv from $requirements" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$base_python" -m venv "$venv"
  args=()
  local_indexes=()
  for key in global.index-url global.extra-index-url; do
    for url in $("$venv/bin/python" -m pip config get "$key" 2>/dev/null || true); do
      [[ "$url" == file://* ]] && local_indexes+=("$url")
    done
  done
  if (( ${#local_indexes[@]} > 0 )); then
    args+=(--index-url "${local_indexes[0]}")
    for url in "${local_indexes[@]:1}"; do args+=(--extra-index-url "$url"); done
    for dir in $("$venv/bin/python" -m pip config get global.find-links 2>/dev/null || true); do
      args+=(--find-links "$dir")
    done
  fi
  # pip warns once per package about every local index that lacks it: the log keeps that noise
  log="$venv/install.log"
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install "${args[@]}" -r "$requirements" >"$log" 2>&1; then
    grep -v "is neither a file nor a directory" "$log" | tail -n 30 >&2
    echo "cairn: installing $requirements failed (whole log: $log)" >&2
    exit 1
  fi
  touch "$marker"
fi
echo "$venv/bin/python"
