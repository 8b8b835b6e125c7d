#!/bin/sh
# matrix_step_test.sh RELAYLAB FILE: <matrix> and <expect-matrix-cell> in a topology
# (testdata/topology/runner/matrix.xml): "pinned" passes; "open" fails with the open-relay
# finding (naming the restriction that let it through), the cell that does not hold, and the
# cell that matches nothing, each at its file:line:column.
set -u
fail() { echo "FAIL: $*"; echo "$out"; exit 1; }
out=$("$1" run "$2" --scenario pinned 2>&1) || fail "pinned: exit $?"
out=$("$1" run "$2" --scenario open 2>/dev/null)
rc=$?
[ "$rc" -eq 1 ] || fail "open: exit $rc, expected 1"
echo "$out" | grep -qF "$2:33:5: expected no open-relay cell in relay's policy" || fail "finding"
echo "$out" | grep -qF "got: open relay: smtp, client outside [192.0.2.10], AUTH none, RCPT TO:<victim@foreign.example> -> 250 2.1.5 Ok (decided by smtpd_relay_restrictions: permit) (and " ||
  fail "finding text"
echo "$out" | grep -qF "$2:34:5: expected cell *|outside|*|*|foreign refused" || fail "cell"
echo "$out" | grep -qF "got: smtp|outside|none|local|foreign: accepted at eod" || fail "cell text"
echo "$out" | grep -qF "$2:35:5: expected a cell *|nobody-like-this|*|*|* in the table of step matrix-1" ||
  fail "no cell"
echo "ok"
