#!/bin/sh
# run_twice_test.sh RELAYLAB FILE DIR: two runs with the same seed must produce byte-identical
# JSON report, JUnit XML and maillog, and the same standard output except for the wall time of
# each scenario line (the `wall=` field, masked before comparing). Both runs must pass: identical
# reports of a broken run prove nothing.
relaylab=$1
file=$2
dir=$3
mkdir -p "$dir" || exit 1
for i in 1 2; do
  "$relaylab" run "$file" --seed 424242 --json "$dir/run$i.json" --maillog "$dir/run$i.log" \
    --junit "$dir/run$i.xml" >"$dir/run$i.out" 2>"$dir/run$i.err"
  status=$?
  echo "run $i: exit $status"
  [ "$status" -eq 0 ] || { tail -n 20 "$dir/run$i.out" "$dir/run$i.err"; exit 1; }
  sed 's/  wall=[0-9]*ms$/  wall=(masked)/' "$dir/run$i.out" >"$dir/run$i.masked"
done
cmp "$dir/run1.json" "$dir/run2.json" && cmp "$dir/run1.log" "$dir/run2.log" &&
  cmp "$dir/run1.xml" "$dir/run2.xml" && cmp "$dir/run1.masked" "$dir/run2.masked" || exit 1
grep -q "^seed = 424242$" "$dir/run1.out" || { echo "seed not printed first"; exit 1; }
[ -s "$dir/run1.log" ] || { echo "empty maillog"; exit 1; }
# Every scenario line carries its wall time, and nothing else differs.
lines=$(grep -c '^\(PASS\|FAIL\) ' "$dir/run1.out")
walls=$(grep -c '^\(PASS\|FAIL\) .*  virtual=[0-9.]*s  wall=[0-9]*ms$' "$dir/run1.out")
[ "$lines" -gt 0 ] && [ "$lines" -eq "$walls" ] || {
  echo "scenario lines without wall time: $lines lines, $walls with wall="; exit 1; }
grep -q "wall_ms\|wall=" "$dir/run1.json" "$dir/run1.xml" && { echo "wall time in a report file"; exit 1; }
exit 0
