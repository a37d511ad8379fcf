#!/usr/bin/env bash
# Make sure the machine's PostgreSQL answers on 127.0.0.1:5432; start it if it does not.
set -u
host=127.0.0.1 port=5432
ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
ready && exit 0
echo "PostgreSQL is not answering on $host:$port; starting it" >&2
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "error: PostgreSQL still does not answer on $host:$port; the tests need it (trust auth, database 'test')" >&2
exit 1
