#!/bin/sh
# CLI behaviour checks for CTest: cli_test.sh RELAYLAB CASE [TESTDATA_DIR]
# Each case runs relaylab, then checks the exit status and the message on stderr.
set -u
bin=$1
case=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/relaylab_cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
expect() {  # expect STATUS PATTERN: the last run's status and a stderr line matching PATTERN
  if [ "$status" -ne "$1" ]; then
    echo "FAIL: exit status $status, expected $1"; cat "$tmp/err"; exit 1
  fi
  if ! grep -Eq -- "$2" "$tmp/err"; then
    echo "FAIL: stderr does not match /$2/:"; cat "$tmp/err"; exit 1
  fi
}
case $case in
  version)
    "$bin" version >"$tmp/out" 2>"$tmp/err"; status=$?
    [ "$status" -eq 0 ] && grep -Eq '^relaylab [0-9]' "$tmp/out" || { echo "FAIL version"; exit 1; }
    ;;
  bad_option)
    "$bin" version --no-such-option >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 'no-such-option'
    ;;
  relay_bad_option)
    mkdir "$tmp/cfg"
    "$bin" relay --config-dir "$tmp/cfg" --bogus-flag >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 'bogus-flag'
    "$bin" relay >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 'config-dir'
    "$bin" relay --config-dir "$tmp/cfg" --ready-fd x >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 'ready-fd'
    "$bin" relay --config-dir "$tmp/cfg" --commit-delay-us 100001 >"$tmp/out" 2>"$tmp/err"
    status=$?
    expect 2 'commit-delay-us: Value 100001 not in range 0 to 100000'
    ;;
  relay_tls_refused)
    # TLS promises relaylab cannot keep stop start-up with file:line (fail closed).
    mkdir "$tmp/cfg"
    run() {
      "$bin" relay --config-dir "$tmp/cfg" --queue-dir "$tmp/q" >"$tmp/out" 2>"$tmp/err"
      status=$?
    }
    printf 'myhostname = relay.example.com\ncompatibility_level = 3.6\nalias_maps =\n' >"$tmp/cfg/main.cf"
    printf 'smtp inet n - n - - smtpd\nsubmission inet n - n - - smtpd\n  -o smtpd_tls_security_level=encrypt\n' >"$tmp/cfg/master.cf"
    run
    expect 2 "$tmp/cfg/master.cf:2: fatal: smtpd_tls_security_level asks for TLS but no server certificate"
    printf 'smtp inet n - n - - smtpd\n' >"$tmp/cfg/master.cf"
    printf 'myhostname = relay.example.com\ncompatibility_level = 3.6\nalias_maps =\nsmtpd_tls_security_level = dane\n' >"$tmp/cfg/main.cf"
    run
    expect 2 "$tmp/cfg/main.cf:4: fatal: invalid TLS security level"
    printf 'myhostname = relay.example.com\ncompatibility_level = 3.6\nalias_maps =\nsmtpd_tls_ask_ccert = yes\n' >"$tmp/cfg/main.cf"
    run
    expect 2 "$tmp/cfg/main.cf:4: fatal: smtpd_tls_ask_ccert = yes is not implemented"
    printf 'myhostname = relay.example.com\ncompatibility_level = 3.6\nalias_maps =\nsmtp_tls_security_level = dane\n' >"$tmp/cfg/main.cf"
    run
    expect 2 "$tmp/cfg/main.cf:4: fatal: smtp_tls_security_level = dane is not implemented"
    printf 'myhostname = relay.example.com\ncompatibility_level = 3.6\nalias_maps =\n' >"$tmp/cfg/main.cf"
    printf 'smtp inet n - n - - smtpd\nsmtp unix - - n - - smtp\n  -o smtp_tls_wrappermode=yes\n' >"$tmp/cfg/master.cf"
    run
    expect 2 "$tmp/cfg/master.cf:2: fatal: service smtp: -o smtp_tls_wrappermode=yes is not implemented"
    printf 'smtp inet n - n - - smtpd\n' >"$tmp/cfg/master.cf"
    printf 'myhostname = relay.example.com\ncompatibility_level = 3.6\nalias_maps =\nsmtpd_tls_security_level = may\nsmtpd_tls_cert_file = %s/missing.pem\n' "$tmp" >"$tmp/cfg/main.cf"
    run
    expect 2 "fatal: .*TLS: cannot load certificate chain from $tmp/missing.pem"
    ;;
  relay_garbage_config)
    mkdir "$tmp/cfg"
    printf 'myhostname = relay.example.com\nsmtpd_timeout = 300s\n' >"$tmp/cfg/main.cf"
    printf 'smtp inet n - n - - smtpd\nthis line is garbage\n' >"$tmp/cfg/master.cf"
    "$bin" relay --config-dir "$tmp/cfg" --queue-dir "$tmp/q" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 "$tmp/cfg/master.cf:2: "
    printf 'smtpd_timeout = forever\n' >"$tmp/cfg/main.cf"
    printf 'smtp inet n - n - - smtpd\n' >"$tmp/cfg/master.cf"
    "$bin" relay --config-dir "$tmp/cfg" --queue-dir "$tmp/q" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 "$tmp/cfg/main.cf:1: .*smtpd_timeout"
    ;;
  relay_refused_parameter)
    # A parameter relaylab does not implement and that would change a promise stops the relay.
    mkdir "$tmp/cfg"
    printf 'myhostname = relay.example.com\nsmtpd_milters = inet:127.0.0.1:8891\n' \
      >"$tmp/cfg/main.cf"
    printf 'smtp inet n - n - - smtpd\n' >"$tmp/cfg/master.cf"
    "$bin" relay --config-dir "$tmp/cfg" --queue-dir "$tmp/q" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 "^$tmp/cfg/main.cf:2: fatal: smtpd_milters = .* is not implemented by relaylab"
    printf 'myhostname = relay.example.com\n' >"$tmp/cfg/main.cf"
    printf 'smtp inet n - n - - smtpd\nsubmission inet n - n - - smtpd\n  -o body_checks=pcre:/x\n' \
      >"$tmp/cfg/master.cf"
    "$bin" relay --config-dir "$tmp/cfg" --queue-dir "$tmp/q" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 "^$tmp/cfg/master.cf:2: fatal: body_checks = pcre:/x is not implemented by relaylab"
    ;;
  *)
    echo "unknown case $case"; exit 1 ;;
esac
echo "ok: $case"
