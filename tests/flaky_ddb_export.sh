#!/usr/bin/env bash
# `ddb-export` that fails once at the steps a test names in DDB_EXPORT_FAIL_ONCE (space-separated),
# as a worker that dies would, so that the workflow engine's retry is what carries the export on:
#   STEP          exits 1 before running STEP (plan, run-shard-K, finalize)
#   STEP-after    runs STEP, then exits 1 as if the task died after it (its retry must find the
#                 same export, not start another)
# Each fires once: a marker in DDB_EXPORT_FAIL_DIR records that it did. The real binary is
# DDB_EXPORT_REAL_BIN.
set -u
real="$DDB_EXPORT_REAL_BIN"
step="$1"
if [ "$step" = run-shard ]; then
  previous=""
  for arg in "$@"; do
    [ "$previous" = --shard ] && step="run-shard-$arg"
    previous="$arg"
  done
fi
fire() {
  local marker="$DDB_EXPORT_FAIL_DIR/$1"
  [ -e "$marker" ] && return 1
  touch "$marker"
}
for wanted in ${DDB_EXPORT_FAIL_ONCE:-}; do
  if [ "$wanted" = "$step" ] && fire "$wanted"; then
    echo "flaky_ddb_export: failing $step before it runs" >&2
    exit 1
  fi
  if [ "$wanted" = "$step-after" ] && fire "$wanted"; then
    "$real" "$@" > /dev/null
    echo "flaky_ddb_export: failing $step after it ran" >&2
    exit 1
  fi
done
exec "$real" "$@"
