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
start_mx() {  # start_mx ARGS...: relaylab mx in the background; sets mx_pid and mx_port
  "$bin" mx --listen 127.0.0.1:0 "$@" >"$tmp/mx.out" 2>"$tmp/mx.err" &
  mx_pid=$!
  trap 'kill "$mx_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
  for _ in $(seq 1 100); do
    mx_port=$(sed -n 's/^relaylab mx: listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/mx.out")
    [ -n "$mx_port" ] && return 0
    sleep 0.1
  done
  echo "FAIL: relaylab mx did not start"; cat "$tmp/mx.err"; exit 1
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
    printf 'smtp inet n - n - - smtpd\nlmtp unix - - n - - lmtp\n  -o smtp_tls_security_level=encrypt\n' >"$tmp/cfg/master.cf"
    run
    expect 2 "$tmp/cfg/master.cf:2: fatal: service lmtp: -o smtp_tls_security_level=encrypt is not implemented by relaylab: relaylab has no LMTP client"
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
  mx_tls)
    # relaylab mx --tls: usage errors, then STARTTLS checked by openssl s_client.
    "$bin" mx --listen 127.0.0.1:0 --tls bogus >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 '--tls: expected good, self-signed or expired, got "bogus"'
    "$bin" mx --listen 127.0.0.1:0 --tls-cert "$tmp/x.pem" >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 '--tls-cert and --tls-key go together'
    "$bin" mx --listen 127.0.0.1:0 --tls-wrapper >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 '--tls-wrapper, --tls-ca-out and --tls-name need --tls'
    command -v openssl >/dev/null || { echo "ok: $case (no openssl: live part skipped)"; exit 0; }
    for kind in good self-signed expired; do
      start_mx --tls $kind --tls-ca-out "$tmp/ca.pem"
      openssl s_client -connect "127.0.0.1:$mx_port" -starttls smtp -CAfile "$tmp/ca.pem" \
        -verify_hostname mx.fake.example </dev/null >"$tmp/err" 2>&1
      case $kind in
        good) status=0; expect 0 'Verify return code: 0 \(ok\)' ;;
        self-signed) status=0; expect 0 'Verify return code: 18 \(self-signed certificate\)' ;;
        expired) status=0; expect 0 'Verify return code: 10 \(certificate has expired\)' ;;
      esac
      kill "$mx_pid"; wait "$mx_pid"
    done
    start_mx --tls good --tls-wrapper --tls-ca-out "$tmp/ca.pem"
    printf 'QUIT\r\n' | openssl s_client -connect "127.0.0.1:$mx_port" -CAfile "$tmp/ca.pem" \
      -verify_hostname mx.fake.example -ign_eof >"$tmp/err" 2>&1
    status=0; expect 0 'Verify return code: 0 \(ok\)'
    grep -q '^220 mx.fake.example ESMTP' "$tmp/err" || { echo "FAIL: no greeting over TLS"; exit 1; }
    kill "$mx_pid"; wait "$mx_pid"
    grep -q 'tls=1 tls_failed=0' "$tmp/mx.out" || { echo "FAIL: summary"; cat "$tmp/mx.out"; exit 1; }
    ;;
  send_tls)
    # relaylab send with smtp-use-starttls against relaylab mx --tls.
    start_mx --tls self-signed
    echo body | MAILRC=/dev/null "$bin" send -S "smtp=smtp://127.0.0.1:$mx_port" \
      -S smtp-use-starttls -r a@c.example -s t b@x.example >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 4 'TLS certificate verify failed: self-signed certificate'
    echo body | MAILRC=/dev/null "$bin" send -S "smtp=smtp://127.0.0.1:$mx_port" \
      -S smtp-use-starttls -S ssl-verify=warn -r a@c.example -s t b@x.example \
      >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 0 'warning: TLS certificate verify failed: self-signed certificate'
    kill "$mx_pid"; wait "$mx_pid"
    start_mx --tls good --tls-ca-out "$tmp/ca.pem"
    echo body | MAILRC=/dev/null "$bin" send -S "smtp=smtp://127.0.0.1:$mx_port" \
      -S smtp-use-starttls -S "ssl-ca-file=$tmp/ca.pem" -r a@c.example -s t b@x.example \
      >"$tmp/out" 2>"$tmp/err"; status=$?
    [ "$status" -eq 0 ] || { echo "FAIL: send over verified STARTTLS: $status"; cat "$tmp/err"; exit 1; }
    kill "$mx_pid"; wait "$mx_pid"
    grep -q 'messages=1 .* tls=1' "$tmp/mx.out" || { echo "FAIL: mx summary"; cat "$tmp/mx.out"; exit 1; }
    start_mx
    echo body | MAILRC=/dev/null "$bin" send -S "smtp=smtp://127.0.0.1:$mx_port" \
      -S smtp-use-starttls -r a@c.example -s t b@x.example >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 4 'STARTTLS not offered by the server'
    kill "$mx_pid"; wait "$mx_pid"
    grep -q 'messages=0' "$tmp/mx.out" || { echo "FAIL: mail sent in clear"; exit 1; }
    ;;
  load_tls)
    # relaylab load --starttls / --tls against relaylab mx --tls, verified with --tls-ca.
    "$bin" load --starttls --tls 127.0.0.1:1 >"$tmp/out" 2>"$tmp/err"; status=$?
    expect 2 '--starttls and --tls exclude each other'
    start_mx --tls good --tls-ca-out "$tmp/ca.pem"
    "$bin" load --starttls --tls-ca "$tmp/ca.pem" -s 2 -m 4 "127.0.0.1:$mx_port" \
      >"$tmp/out" 2>"$tmp/err"; status=$?
    [ "$status" -eq 0 ] || { echo "FAIL: load --starttls: $status"; cat "$tmp/out" "$tmp/err"; exit 1; }
    kill "$mx_pid"; wait "$mx_pid"
    grep -q 'messages=4 .* tls=4' "$tmp/mx.out" || { echo "FAIL: mx summary"; cat "$tmp/mx.out"; exit 1; }
    start_mx --tls self-signed --tls-wrapper
    "$bin" load --tls --tls-ca "$tmp/ca.pem" -m 2 "127.0.0.1:$mx_port" >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ "$status" -eq 1 ] && grep -q 'tls: untrusted (self-signed certificate)' "$tmp/out" ||
      { echo "FAIL: untrusted not reported"; cat "$tmp/out" "$tmp/err"; exit 1; }
    "$bin" load --tls -m 2 "127.0.0.1:$mx_port" >"$tmp/out" 2>"$tmp/err"; status=$?
    [ "$status" -eq 0 ] || { echo "FAIL: load --tls without verification"; cat "$tmp/out"; exit 1; }
    kill "$mx_pid"; wait "$mx_pid"
    ;;
  *)
    echo "unknown case $case"; exit 1 ;;
esac
echo "ok: $case"
