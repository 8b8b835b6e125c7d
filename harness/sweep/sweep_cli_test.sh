#!/bin/sh
# CTest checks of `relaylab sweep`: sweep_cli_test.sh RELAYLAB CASE [DOC]
#   docs_example  runs every `relaylab ...` line of the ```sh block in DOC (docs/sweep.md) in a
#                 scratch directory; each must exit 0.
#   docs_sharding runs the ```sh block of DOC's sharding section as a script (it must exit 0).
#   bad_options   bad values exit 2 with a message naming the option.
#   keep_replay   a kept case replays with `relaylab run` and passes; the same seed gives the
#                 same file twice.
#   xsd XMLLINT XSD  200 generated files validate against the schema.
#   shard_merge   three shards run as separate processes (one --shard I/N, two --shard auto from
#                 Slurm's and Kubernetes' variables, one with -j 2) and `relaylab report merge`
#                 give the unsharded sweep's JSON and JUnit byte for byte; a missing shard is an
#                 error naming it.
#   deploy DIR    the shipped scheduler files (DIR = deploy/) run here: the Slurm script for
#                 each array task, the Kubernetes Job's container command for each completion
#                 index (its RELAYLAB_SHARD_COUNT must equal completions), both with a small
#                 --count, then `relaylab report merge` of their reports.
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
  docs_sharding)
    # The ```sh block after the sweep.docs_sharding marker, as a shell script (relaylab on PATH).
    doc=$3
    awk '/sweep.docs_sharding/ {m=1} m && /^```sh/ {b=1; next} b && /^```/ {exit} b {print}' \
      "$doc" >"$tmp/commands"
    [ -s "$tmp/commands" ] || fail "no \`\`\`sh block after the sweep.docs_sharding marker in $doc"
    mkdir -p "$tmp/bin" && ln -s "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" "$tmp/bin/relaylab"
    (cd "$tmp" && PATH="$tmp/bin:$PATH" sh -ex "$tmp/commands") >"$tmp/out" 2>&1 || fail "the documented commands"
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
    expect_usage '--shard: expected I/N' --count 3 --seed 1 --shard 4/3
    expect_usage '--shard needs --seed' --count 3 --shard 1/3
    expect_usage 'no shard in the environment' --count 3 --seed 1 --shard auto
    ;;
  shard_merge)
    args="--count 40 --seed 300"
    "$bin" sweep $args --json "$tmp/whole.json" --junit "$tmp/whole.xml" >"$tmp/out" 2>"$tmp/err"
    [ $? -le 1 ] || fail "unsharded sweep"
    "$bin" sweep $args --shard 1/3 --json "$tmp/s1.json" >"$tmp/o1" 2>&1 &
    p1=$!
    SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=3 \
      "$bin" sweep $args --shard auto -j 2 --json "$tmp/s2.json" >"$tmp/o2" 2>&1 &
    p2=$!
    JOB_COMPLETION_INDEX=2 RELAYLAB_SHARD_COUNT=3 \
      "$bin" sweep $args --shard auto --json "$tmp/s3.json" >"$tmp/o3" 2>&1 &
    p3=$!
    for p in $p1 $p2 $p3; do wait $p; [ $? -le 1 ] || fail "a shard failed to run"; done
    grep -q -- '--shard 2/3 (SLURM_ARRAY_TASK_ID)' "$tmp/o2" || fail "shard 2 header: $(cat "$tmp/o2")"
    grep -q '^sweep: 13 scenarios.*(seeds 313..325)' "$tmp/o2" || fail "shard 2 range: $(cat "$tmp/o2")"
    "$bin" report merge "$tmp/s3.json" "$tmp/s1.json" "$tmp/s2.json" --json "$tmp/merged.json" \
      --junit "$tmp/merged.xml" >"$tmp/out" 2>"$tmp/err"
    [ $? -le 1 ] || fail "report merge exit"
    grep -q '^merged 3 shards: 40 scenarios' "$tmp/out" || fail "merge summary"
    cmp "$tmp/whole.json" "$tmp/merged.json" || fail "merged JSON differs from the unsharded sweep's"
    cmp "$tmp/whole.xml" "$tmp/merged.xml" || fail "merged JUnit differs from the unsharded sweep's"
    "$bin" report merge "$tmp/s1.json" "$tmp/s3.json" >"$tmp/out" 2>"$tmp/err"
    [ $? -eq 2 ] || fail "a missing shard must exit 2"
    grep -q 'shard 2/3 is missing' "$tmp/err" || fail "missing shard not named"
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
  deploy)
    dir=$3
    mkdir -p "$tmp/bin" && ln -s "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" "$tmp/bin/relaylab"
    for i in 0 1 2; do
      (cd "$tmp" && PATH="$tmp/bin:$PATH" COUNT=10 SEED=5 OUT="$tmp/slurm" SLURM_ARRAY_TASK_ID=$i \
        SLURM_ARRAY_TASK_COUNT=3 SLURM_CPUS_PER_TASK=1 bash "$dir/slurm/sweep.sbatch") \
        >"$tmp/out" 2>&1 || fail "Slurm task $i"
    done
    "$bin" report merge "$tmp"/slurm/shard-*.json >"$tmp/out" 2>"$tmp/err" || fail "Slurm merge"
    grep -q '^merged 3 shards: 10 scenarios' "$tmp/out" || fail "Slurm merge summary"
    job=$dir/kubernetes/sweep-indexed-job.yaml
    n=$(sed -n 's/^  completions: \([0-9]*\)$/\1/p' "$job")
    grep -A1 'name: RELAYLAB_SHARD_COUNT' "$job" | grep -q "value: \"$n\"" ||
      fail "RELAYLAB_SHARD_COUNT must equal completions ($n)"
    # The container's command, one argument per "- " line, with a small count and local paths.
    sed -n '/^          command:/,/^          env:/s/^            - //p' "$job" |
      sed -e 's/^--count=.*/--count=16/' -e "s|/reports/|$tmp/k8s-|" >"$tmp/args"
    i=0
    while [ $i -lt "$n" ]; do
      set --
      while IFS= read -r a; do set -- "$@" "$(echo "$a" | sed "s/\$(JOB_COMPLETION_INDEX)/$i/")"; done <"$tmp/args"
      shift  # "relaylab"
      JOB_COMPLETION_INDEX=$i RELAYLAB_SHARD_COUNT=$n "$bin" "$@" >"$tmp/out" 2>&1 ||
        fail "Kubernetes index $i: relaylab $*"
      i=$((i + 1))
    done
    "$bin" report merge "$tmp"/k8s-shard-*.json >"$tmp/out" 2>"$tmp/err" || fail "Kubernetes merge"
    grep -q "^merged $n shards: 16 scenarios" "$tmp/out" || fail "Kubernetes merge summary"
    ;;
  *)
    fail "unknown case $case"
    ;;
esac
