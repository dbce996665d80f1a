#!/usr/bin/env bash
# Installs the system tools the test suite runs for real (JDK + Maven for Elasticsearch, PostgreSQL,
# Chromium), each only when it is missing. Safe to run again: on a ready machine it changes nothing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; install the missing packages by hand" >&2
  fi
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# The server binaries, not just the psql client: Debian keeps them under /usr/lib/postgresql/<major>/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Screenshots of the console would show Chinese as boxes without a CJK font.
compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK*" >/dev/null || missing+=(fonts-noto-cjk)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: java, mvn, postgresql, chromium, CJK fonts already present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# `docker compose config` validates docker-compose.yml; Debian has no Compose v2 package, so the plugin
# is built from its Go module (once; the binary is kept in the Go bin dir).
if ! docker compose version >/dev/null 2>&1 && command -v go >/dev/null 2>&1; then
  echo "install-deps: building the docker compose plugin"
  GOFLAGS=-mod=mod go install github.com/docker/compose/v2/cmd@v2.29.7
  mkdir -p "$HOME/.docker/cli-plugins"
  cp "$(go env GOPATH)/bin/cmd" "$HOME/.docker/cli-plugins/docker-compose"
fi
