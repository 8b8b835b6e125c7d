#!/bin/sh
# check_bad_test.sh RELAYLAB FILE: `relaylab check FILE` must exit 2 and print
# FILE:LINE:COLUMN: error: ... where the file's first line announces
# <!-- expect: LINE:COLUMN message -->.
relaylab=$1
file=$2
want=$(sed -n '1s/.*expect: \([0-9]*:[0-9]*\) .*/\1/p' "$file")
[ -n "$want" ] || { echo "no expect comment in $file"; exit 1; }
out=$("$relaylab" check "$file" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 2 ] || { echo "exit status $rc, expected 2"; exit 1; }
echo "$out" | head -1 | grep -qF "$file:$want: error: " || {
  echo "first line does not name $file:$want"; exit 1; }
exit 0
