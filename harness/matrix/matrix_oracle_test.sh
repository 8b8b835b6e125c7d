#!/bin/sh
# relaylab matrix --oracle postfix checks for CTest (label oracle; needs root and Debian's
# postfix, a missing Postfix fails): matrix_oracle_test.sh RELAYLAB CASE REPO
#   CASE = a testdata/configs name: every cell answers as the private Postfix does (exit 0)
#   inject: a wrong relaylab answer (the --test-inject-difference hook) is caught (exit 1)
#   no_start: a configuration Postfix refuses to start with is an error (exit 2), not a pass
set -u
bin=$1 case=$2 repo=$3
# shellcheck source=test_common.sh
. "$repo/harness/matrix/test_common.sh"
case $case in
  inject)
    render seed
    key='127.0.0.1:587|inside:127.0.0.0/8|ok|local|foreign'
    # shellcheck disable=SC2086
    "$bin" matrix --config-dir "$tmp/seed" $auth --oracle postfix --test-inject-difference "$key" \
      >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ "$status" -eq 1 ] || { cat "$tmp/out" "$tmp/err"; fail "exit $status, expected 1"; }
    grep -Eq '^127\.0\.0\.1:587 +inside:127\.0\.0\.0/8 +ok +local +foreign +eod: 554 5\.7\.1 injected by the test hook .* eod: 250 2\.0\.0 Ok: queued as QUEUEID' "$tmp/out" ||
      { cat "$tmp/out"; fail "the injected cell is not reported"; }
    grep -q '^1 of 252 cells decide differently$' "$tmp/out" || { cat "$tmp/out"; fail "count"; }
    ;;
  no_start)
    render seed
    # relaylab reads it, Postfix's master refuses to bind an address this host does not have.
    sed -i 's|^127\.0\.0\.1:25 |192.0.2.1:25 |' "$tmp/seed/master.cf"
    printf 'inet_interfaces = 192.0.2.1\n' >>"$tmp/seed/main.cf"
    "$bin" matrix --config-dir "$tmp/seed" --oracle postfix >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ "$status" -eq 2 ] || { cat "$tmp/out" "$tmp/err"; fail "exit $status, expected 2"; }
    grep -q '^relaylab matrix: --oracle postfix: ' "$tmp/err" || { cat "$tmp/err"; fail "no error"; }
    [ ! -s "$tmp/out" ] || fail "a table although Postfix did not start"
    ;;
  *)
    render "$case"
    # shellcheck disable=SC2086
    "$bin" matrix --config-dir "$tmp/$case" $auth --oracle postfix >"$tmp/out" 2>"$tmp/err"
    status=$?
    cat "$tmp/err" | grep -- '--oracle postfix:'
    [ "$status" -eq 0 ] || { cat "$tmp/out" "$tmp/err"; fail "exit $status, expected 0"; }
    grep -q '^no cell differs between relaylab and Postfix 3\.7\.11 ([0-9]* cells)$' "$tmp/out" ||
      { cat "$tmp/out"; fail "no verdict"; }
    cat "$tmp/out"
    ;;
esac
# The instance this run started (stderr names its directory) is gone.
dir=$(sed -n 's/^relaylab matrix: --oracle postfix: Postfix [0-9.]* in //p' "$tmp/err")
[ -z "$dir" ] || [ ! -d "$dir" ] || fail "the Postfix instance $dir was left behind"
echo "ok $case"
