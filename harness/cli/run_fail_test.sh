#!/bin/sh
# run_fail_test.sh RELAYLAB FILE: a scenario whose expectation cannot hold must exit 1 and print
# the expectation's file:line:column, what happened and the replay command.
out=$("$1" run "$2" --seed 5 2>/dev/null)
rc=$?
echo "$out"
[ "$rc" -eq 1 ] || { echo "exit status $rc, expected 1"; exit 1; }
echo "$out" | grep -q "^FAIL wrong-expectation " || exit 1
echo "$out" | grep -qF "$2:" || { echo "no file:line:column"; exit 1; }
echo "$out" | grep -q "    got: " || exit 1
echo "$out" | grep -qF "replay: relaylab run $2 --scenario wrong-expectation --seed 5" || exit 1
exit 0
