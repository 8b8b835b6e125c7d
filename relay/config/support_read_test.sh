#!/bin/sh
# CTest: every parameter support.inc calls implemented without a note is really read: its name
# is the first argument of a call ("get(\"NAME\"", "int_param(\"NAME\"", ...) somewhere in the
# relay, harness or fakes sources (tests excluded). Usage: support_read_test.sh SOURCE_DIR
set -u
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find "$root/relay" "$root/harness" "$root/fakes" \( -name '*.cpp' -o -name '*.hpp' \) \
  ! -name '*_test.cpp' -print | xargs grep -ohE '\("[a-z0-9_]+"' | sort -u >"$tmp/calls"
sed -n 's/^{"\([a-z0-9_]*\)", support_class::implemented, ""},$/\1/p' \
  "$root/relay/config/support.inc" >"$tmp/implemented"
[ -s "$tmp/implemented" ] || { echo "FAIL: no implemented parameters found"; exit 1; }
status=0
while read -r name; do
  grep -qx "(\"$name\"" "$tmp/calls" || { echo "FAIL: $name is implemented but never read"; status=1; }
done <"$tmp/implemented"
[ "$status" -eq 0 ] && echo "ok: $(wc -l <"$tmp/implemented") implemented parameters are read"
exit "$status"
