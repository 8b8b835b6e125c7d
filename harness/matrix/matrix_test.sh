#!/bin/sh
# relaylab matrix checks for CTest: matrix_test.sh RELAYLAB CASE REPO
# Configs are the oracle suite's templates (testdata/configs), rendered by render_config.sh.
set -u
bin=$1 case=$2 repo=$3
# shellcheck source=test_common.sh
. "$repo/harness/matrix/test_common.sh"
golden() {  # golden OLD NEW: --against output equals testdata/matrix/OLD-vs-NEW.txt, exit 1
  render "$1"; render "$2"
  # shellcheck disable=SC2086
  "$bin" matrix --config-dir "$tmp/$1" --against "$tmp/$2" $auth >"$tmp/out" 2>"$tmp/err"
  status=$?
  [ "$status" -eq 1 ] || { cat "$tmp/err"; fail "exit $status, expected 1"; }
  sed "s|$tmp|TMP|g" "$tmp/out" >"$tmp/got"
  diff -u "$repo/testdata/matrix/$1-vs-$2.txt" "$tmp/got" || fail "differs from golden"
}
case $case in
  handson)
    render seed
    # shellcheck disable=SC2086
    "$bin" matrix --config-dir "$tmp/seed" $auth --highlight >"$tmp/out" 2>"$tmp/err" ||
      { cat "$tmp/err"; fail "exit $?"; }
    # The seed's bug: an authenticated client outside mynetworks is refused relay on 587.
    grep -Eq '^127\.0\.0\.1:587 +outside +ok +local +foreign +rcpt +554 5\.7\.1 <victim@foreign\.example>: Relay access denied +smtpd_recipient_restrictions: reject_unauth_destination +auth-refused-relay' "$tmp/out" ||
      fail "no highlighted bug cell"
    grep -q '^highlight: auth-refused-relay: authenticated user refused relay: 127.0.0.1:587, client outside \[192.0.2.10\], AUTH ok, RCPT TO:<victim@foreign.example> -> 554 5.7.1 <victim@foreign.example>: Relay access denied (decided by smtpd_recipient_restrictions: reject_unauth_destination)$' "$tmp/out" ||
      fail "no highlight line"
    grep -q '^highlight: defer-unauth-destination: .*smtpd_relay_restrictions: defer_unauth_destination' "$tmp/out" ||
      fail "no defer_unauth_destination oddity"
    grep -q '^highlight: bare-lf-accepted: 127.0.0.1:25: smtpd_forbid_bare_newline = no' "$tmp/out" ||
      fail "no bare LF finding"
    ! grep -q 'open-relay' "$tmp/out" || fail "the seed is no open relay"
    # Inside mynetworks, port 25 relays without AUTH, decided by permit_mynetworks.
    grep -Eq '^127\.0\.0\.1:25 +inside:127\.0\.0\.0/8 +none +null +foreign +eod +250 2\.0\.0 Ok: queued as [0-9A-Z]+ +smtpd_recipient_restrictions: permit_mynetworks' "$tmp/out" ||
      fail "no permit_mynetworks cell"
    # Without credentials the AUTH success column is left out, and said so.
    "$bin" matrix --config-dir "$tmp/seed" >"$tmp/out" 2>"$tmp/err" || fail "exit $?"
    grep -q '^note: AUTH success not sampled' "$tmp/out" || fail "no note"
    ! grep -Eq ' ok +(local|foreign|null) ' "$tmp/out" || fail "AUTH ok cells without credentials"
    # An open relay is found, with the restriction that let it through.
    sed -i 's|^smtpd_recipient_restrictions = .*|smtpd_recipient_restrictions = permit|' "$tmp/seed/main.cf"
    sed -i 's|^smtpd_relay_restrictions = .*|smtpd_relay_restrictions = permit_mynetworks, permit, defer_unauth_destination|' "$tmp/seed/main.cf"
    "$bin" matrix --config-dir "$tmp/seed" --highlight --sample client.outside=203.0.113.7 >"$tmp/out" 2>"$tmp/err" ||
      { cat "$tmp/err"; fail "open relay: exit $?"; }
    grep -q '^highlight: open-relay: open relay: 127.0.0.1:25, client outside \[203.0.113.7\], AUTH none, RCPT TO:<victim@foreign.example> -> 250 2.1.5 Ok (decided by smtpd_recipient_restrictions: permit)$' "$tmp/out" ||
      fail "no open relay"
    ;;
  against_fix_a) golden seed fix-a ;;
  against_fix_b) golden seed fix-b ;;
  against_same)
    render seed
    # shellcheck disable=SC2086
    "$bin" matrix --config-dir "$tmp/seed" --against "$tmp/seed" $auth >"$tmp/out" 2>"$tmp/err" ||
      fail "exit $? for identical configs"
    grep -q '^no cell decides differently (252 cells)$' "$tmp/out" || fail "$(cat "$tmp/out")"
    ;;
  formats)
    render seed
    for f in markdown csv json; do
      # shellcheck disable=SC2086
      "$bin" matrix --config-dir "$tmp/seed" $auth --format $f --highlight >"$tmp/$f" 2>"$tmp/err" ||
        fail "--format $f: exit $?"
    done
    head -1 "$tmp/markdown" | grep -q '^| listener | client | auth | sender | recipient | stage | reply | decided by | highlight |$' ||
      fail "markdown header"
    [ "$(wc -l <"$tmp/csv")" -eq 253 ] || fail "csv: $(wc -l <"$tmp/csv") lines, expected 253"
    grep -q '^127.0.0.1:587,outside,192.0.2.10,ok,local,alice@relay.example.com,foreign,victim@foreign.example,refused,' "$tmp/csv" ||
      fail "csv bug row"
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["cells"])==252; assert any(f["kind"]=="auth-refused-relay" for f in d["findings"])' "$tmp/json" ||
      fail "json"
    # shellcheck disable=SC2086
    "$bin" matrix --config-dir "$tmp/seed" $auth --html -o "$tmp/m.html" 2>"$tmp/err" || fail "--html"
    grep -q '<input data-col="0"' "$tmp/m.html" || fail "html filter"
    # shellcheck disable=SC2086
    "$bin" matrix --config-dir "$tmp/seed" $auth --fold >"$tmp/fold" 2>"$tmp/err" || fail "--fold"
    [ "$(wc -l <"$tmp/fold")" -le 20 ] || fail "--fold: $(wc -l <"$tmp/fold") lines"
    grep -Eq '^84 +127\.0\.0\.1:587 +\* +bad,none +\* +\* +rcpt +554 5\.7\.1 <…>: Client host rejected: Access denied +smtpd_client_restrictions: reject$' "$tmp/fold" ||
      fail "fold row"
    "$bin" matrix --config-dir "$tmp/seed" --colour always | grep -q "$(printf '\033')\[3" || fail "colour"
    ;;
  usage)
    render seed
    "$bin" matrix --config-dir "$tmp/seed" --sample rcpt.nosuch=x@y >"$tmp/out" 2>"$tmp/err"
    [ $? -eq 2 ] || fail "unknown sample: exit not 2"
    grep -q 'rcpt.nosuch=x@y: no such sample (known: client.inside:127.0.0.0/8, client.outside' "$tmp/err" || fail "$(cat "$tmp/err")"
    "$bin" matrix --config-dir "$tmp/seed" --auth-user u >"$tmp/out" 2>"$tmp/err"
    [ $? -eq 2 ] || fail "--auth-user alone: exit not 2"
    mkdir "$tmp/bad"
    printf 'smtpd_recipient_restrictions = permit_mynetworks, no_such_restriction\n' >"$tmp/bad/main.cf"
    printf 'smtp inet n - n - - smtpd\n' >"$tmp/bad/master.cf"
    "$bin" matrix --config-dir "$tmp/bad" >"$tmp/out" 2>"$tmp/err"
    [ $? -eq 2 ] || fail "bad restriction: exit not 2"
    grep -q 'no_such_restriction' "$tmp/err" || fail "$(cat "$tmp/err")"
    ;;
  *) fail "unknown case $case" ;;
esac
echo "ok $case"
