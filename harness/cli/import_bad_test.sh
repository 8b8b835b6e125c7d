#!/bin/sh
# import_bad_test.sh RELAYLAB FILE: `relaylab import cfn FILE` must exit 2 and print first
# FILE:LINE:COLUMN: error: MESSAGE..., as announced by the file's first line
# `# expect: LINE:COLUMN MESSAGE` (or, for JSON, which has no comments, by FILE.expect's line
# `LINE:COLUMN MESSAGE`). MESSAGE is matched as a fixed string.
relaylab=$1
file=$2
if [ -f "$file.expect" ]; then
  line=$(head -1 "$file.expect")
else
  line=$(sed -n '1s/^# expect: //p' "$file")
fi
[ -n "$line" ] || { echo "no expectation for $file"; exit 1; }
want=${line%% *}
message=${line#* }
out=$("$relaylab" import cfn "$file" -o /dev/null 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 2 ] || { echo "exit status $rc, expected 2"; exit 1; }
first=$(echo "$out" | head -1)
echo "$first" | grep -qF "$file:$want: error: " || { echo "first line does not name $file:$want"; exit 1; }
echo "$first" | grep -qF -- "$message" || { echo "first line does not say \"$message\""; exit 1; }
exit 0
