#!/bin/sh
# run_twice_test.sh RELAYLAB FILE DIR: two runs with the same seed must produce byte-identical
# standard output, JSON report and maillog.
relaylab=$1
file=$2
dir=$3
mkdir -p "$dir" || exit 1
for i in 1 2; do
  "$relaylab" run "$file" --seed 424242 --json "$dir/run$i.json" --maillog "$dir/run$i.log" \
    --junit "$dir/run$i.xml" >"$dir/run$i.out" 2>/dev/null
  echo "run $i: exit $?"
done
cmp "$dir/run1.out" "$dir/run2.out" && cmp "$dir/run1.json" "$dir/run2.json" &&
  cmp "$dir/run1.log" "$dir/run2.log" && cmp "$dir/run1.xml" "$dir/run2.xml" || exit 1
grep -q "^seed = 424242$" "$dir/run1.out" || { echo "seed not printed first"; exit 1; }
[ -s "$dir/run1.log" ] || { echo "empty maillog"; exit 1; }
exit 0
