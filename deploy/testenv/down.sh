#!/usr/bin/env bash
# Stops the test servers started by up.sh (Samba AD, redis-server, OpenLDAP).
# Only our own instances, found by the pid files under $TESTENV_DIR; nothing
# else on the machine is touched. Safe to run when nothing is running.
set -uo pipefail
LOG_TAG=testenv
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0 pids=()
for s in samba-ad redis openldap; do   # in parallel: each waits for its own server
  "$TESTENV_SRC/$s.sh" stop & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
rm -f "$TESTENV_DIR/env"
exit $rc
