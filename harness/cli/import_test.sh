#!/bin/sh
# import_test.sh RELAYLAB SOURCE_DIR WORK_DIR CASE: relaylab import cfn end to end.
#   handson        the handson stacks (given in reverse order) import into a topology that
#                  `relaylab check` accepts, with no warnings
#   explain        --explain names the allowing rules for 587, and the dropping group for the
#                  template that forgot the 587 rule (exit 1)
relaylab=$1
src=$2
work=$3
case_name=$4
cfn=$src/topologies/handson/cfn
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
stacks() {
  echo "$cfn/cfn-template-client.yml $cfn/$1 $cfn/cfn-template-pri-sub.yml" \
       "$cfn/cfn-template-vpc.yml $cfn/cfn-template-common.yml"
}
case $case_name in
  handson)
    # shellcheck disable=SC2046
    "$relaylab" import cfn $(stacks cfn-template-server.yml) --region ap-northeast-1 \
      -o "$work/handson-net.xml" 2>"$work/stderr" || fail "import exit $?"
    cat "$work/stderr"
    [ -s "$work/stderr" ] && fail "warnings for the handson stacks"
    "$relaylab" check "$work/handson-net.xml" || fail "check"
    grep -q 'name="sg_YYYYMMDD-smtp-handson-server"' "$work/handson-net.xml" || fail "server group"
    grep -q 'cidr="192.168.2.128/25" route-table="YYYYMMDD-smtp-handson-private-rt"' \
      "$work/handson-net.xml" || fail "private subnet"
    ;;
  explain)
    # shellcheck disable=SC2046
    out=$("$relaylab" import cfn $(stacks cfn-template-server.yml) \
          --explain YYYYMMDD-smtp-handson-server:587 YYYYMMDD-smtp-handson-client)
    rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || fail "working case: exit $rc"
    echo "$out" | grep -q "security group sg_YYYYMMDD-smtp-handson-client egress" || fail "egress"
    echo "$out" | grep -q "security group sg_YYYYMMDD-smtp-handson-server ingress tcp 587 from 0.0.0.0/0: allowed" ||
      fail "ingress rule"
    # shellcheck disable=SC2046
    out=$("$relaylab" import cfn $(stacks cfn-template-server-forgot-587.yml) \
          --explain YYYYMMDD-smtp-handson-server:587 YYYYMMDD-smtp-handson-client)
    rc=$?
    echo "$out"
    [ "$rc" -eq 1 ] || fail "forgotten 587: exit $rc, expected 1"
    echo "$out" | grep -q "sg_YYYYMMDD-smtp-handson-server: no ingress rule matches): dropped (the connect times out)" ||
      fail "dropping rule"
    echo "$out" | grep -q "sg_YYYYMMDD-smtp-handson-server: .*cfn-template-server-forgot-587.yml:22:3 ServerSecurityGroup" ||
      fail "template position"
    ;;
  *) fail "unknown case $case_name" ;;
esac
echo PASS
