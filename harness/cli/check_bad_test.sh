#!/bin/sh
# check_bad_test.sh RELAYLAB FILE: `relaylab check FILE` must exit 2 and print
# FILE:LINE:COLUMN: error: ... where the file's first line announces
# <!-- expect: LINE:COLUMN message -->, or PATH:LINE:COLUMN: error: ... for
# <!-- expect: LINE:COLUMN in PATH message --> (PATH relative to FILE's directory: an error in
# a file the topology refers to). The line must also contain the announced message's first word.
relaylab=$1
file=$2
want=$(sed -n '1s/.*expect: \([0-9]*:[0-9]*\) .*/\1/p' "$file")
[ -n "$want" ] || { echo "no expect comment in $file"; exit 1; }
in=$(sed -n '1s/.*expect: [0-9]*:[0-9]* in \([^ ]*\) .*/\1/p' "$file")
where=$file
[ -n "$in" ] && where=$(dirname "$file")/$in
word=$(sed -n '1s/.*expect: [0-9]*:[0-9]* \(in [^ ]* \)\{0,1\}\([^ ]*\).*/\2/p' "$file")
out=$("$relaylab" check "$file" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 2 ] || { echo "exit status $rc, expected 2"; exit 1; }
echo "$out" | head -1 | grep -qF "$where:$want: error: " || {
  echo "first line does not name $where:$want: error: "; exit 1; }
echo "$out" | head -1 | grep -qF -- "$word" || { echo "first line does not say \"$word\""; exit 1; }
exit 0
