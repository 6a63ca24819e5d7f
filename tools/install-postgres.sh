#!/usr/bin/env bash
# Installs Debian's PostgreSQL 15 server binaries for the gradebook tests (tests/pg.py starts a
# private server from them in a temporary folder, as the `postgres` user, and removes it afterwards).
# Only the binaries are needed: the Debian service itself is neither started nor used.
set -euo pipefail
if [ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] \
        && id postgres >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL 15 is missing: run 'sudo apt-get install postgresql-15' for the gradebook tests" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql-15
