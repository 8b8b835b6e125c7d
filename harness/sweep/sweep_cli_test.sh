#!/bin/sh
# CTest checks of `relaylab sweep`: sweep_cli_test.sh RELAYLAB CASE [DOC]
#   docs_example  runs every `relaylab ...` line of the ```sh block in DOC (docs/sweep.md) in a
#                 scratch directory; each must exit 0.
#   bad_options   bad values exit 2 with a message naming the option.
#   keep_replay   a kept case replays with `relaylab run` and passes; the same seed gives the
#                 same file twice.
#   xsd XMLLINT XSD  200 generated files validate against the schema.
set -u
bin=$1
case=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/relaylab_sweep.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/out" ] && cat "$tmp/out"; [ -f "$tmp/err" ] && cat "$tmp/err"; exit 1; }
expect_usage() {  # expect_usage PATTERN ARGS...: exit 2 and stderr matching PATTERN
  pattern=$1; shift
  "$bin" sweep "$@" >"$tmp/out" 2>"$tmp/err"; status=$?
  [ "$status" -eq 2 ] || fail "relaylab sweep $*: exit $status, expected 2"
  grep -Eq -- "$pattern" "$tmp/err" || fail "relaylab sweep $*: stderr does not match /$pattern/"
}
case $case in
  docs_example)
    doc=$3
    # The lines of the first ```sh block after the marker comment.
    awk '/sweep.docs_example/ {m=1} m && /^```sh/ {b=1; next} b && /^```/ {exit} b {print}' \
      "$doc" >"$tmp/commands"
    [ -s "$tmp/commands" ] || fail "no \`\`\`sh block after the sweep.docs_example marker in $doc"
    n=0
    cd "$tmp" || exit 1
    while IFS= read -r line; do
      case $line in
        "relaylab "*) ;;
        *) fail "not a relaylab command in $doc: $line" ;;
      esac
      n=$((n + 1))
      # shellcheck disable=SC2086 # the documented words, split as a shell would
      set -- ${line#relaylab }
      "$bin" "$@" >"$tmp/out" 2>"$tmp/err" || fail "exit $? from: $line"
      echo "ok: $line"
    done <"$tmp/commands"
    [ "$n" -ge 1 ] || fail "no commands run"
    ;;
  bad_options)
    expect_usage '--count' --count 0
    expect_usage '--count' --count 1000001
    expect_usage '--count' --count many
    expect_usage '--seed' --seed -3
    expect_usage '--jobs' --count 1 -j 0
    expect_usage '--keep-all' --count 1 --keep-all
    : >"$tmp/file"
    expect_usage '--keep-failures' --count 1 --keep-failures "$tmp/file"
    expect_usage '--seed' --count 2 --seed 18446744073709551615
    expect_usage 'bogus' --bogus
    ;;
  keep_replay)
    "$bin" sweep --count 2 --seed 41 --keep-failures "$tmp/a" --keep-all >"$tmp/out" 2>"$tmp/err" ||
      fail "sweep exit $?"
    grep -q '^sweep: 2 scenarios, 2 passed, 0 failed' "$tmp/out" || fail "summary line"
    "$bin" sweep --count 1 --seed 42 --keep-failures "$tmp/b" --keep-all >"$tmp/out" 2>"$tmp/err" ||
      fail "sweep exit $?"
    cmp "$tmp/a/sweep-42.xml" "$tmp/b/sweep-42.xml" || fail "seed 42 generated two different files"
    "$bin" run "$tmp/a/sweep-41.xml" --seed 41 >"$tmp/out" 2>"$tmp/err" || fail "run exit $?"
    grep -q '^PASS sweep-41' "$tmp/out" || fail "relaylab run of the kept file"
    ;;
  xsd)
    "$bin" sweep --count 200 --seed 1000 --keep-failures "$tmp/x" --keep-all >"$tmp/out" 2>"$tmp/err" ||
      fail "sweep exit $?"
    [ "$(ls "$tmp/x" | wc -l)" -eq 200 ] || fail "expected 200 kept files"
    "$3" --noout --schema "$4" "$tmp"/x/*.xml >"$tmp/out" 2>"$tmp/err" || fail "xmllint exit $?"
    ;;
  *)
    fail "unknown case $case"
    ;;
esac
