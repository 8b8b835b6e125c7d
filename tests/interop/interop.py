"""Interop tests: real SMTP clients (swaks, s-nail, msmtp, Python smtplib, openssl s_client)
against a relay target, in plain text and with TLS (STARTTLS and wrapper mode; every TLS
client verifies the server certificate against testdata/tls/ca.crt).

    interop.py --target postfix CASE            Postfix (the oracle) from testdata/configs
    interop.py --target relaylab --relaylab BIN CASE
    interop.py --list

A case passes only if the client's exit status says so AND the relay shows it: for an accepted
message the sink (the relayhost) received it with the right envelope and subject and the
maillog has the tutorial's lines (client=..., sasl_method=..., sasl_username=..., status=sent);
for a rejected one the sink stays empty. Run with /usr/bin/python3 as root.
"""

import argparse
import base64
import os
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oracle"))
import instance_common as ic  # noqa: E402
from postfix_instance import postfix_instance  # noqa: E402
from relaylab_instance import relaylab_instance  # noqa: E402

USER, PASSWORD = "smtp-auth@example.com", "relay-pass-1"
SENDER = "hogehoge@fugafuga.com"
RCPT = "friend@remote.example"
OUTSIDE = "ADDR=203.0.113.9 NAME=unknown"
CLIENT_TIMEOUT_S = 60
DELIVERY_TIMEOUT_S = 30
REJECT_SETTLE_S = 2
CA_FILE = str(ic.TLS_DIR / "ca.crt")
TLS_LOG = "TLS connection established from"  # smtpd_tls_loglevel = 1 in testdata/configs/tls


def swaks(port, mech, subject, xclient=None, tls=None):
    """tls: None, "--tls" (STARTTLS required) or "--tls-on-connect" (smtps)."""
    cmd = ["swaks", "--server", f"127.0.0.1:{port}", "--ehlo", "client.example.net",
           "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD,
           "--from", SENDER, "--to", RCPT, "--header", f"Subject: {subject}",
           "--body", "interop test body", "--timeout", "20"]
    if xclient:
        cmd += ["--xclient", xclient]
    if tls:
        cmd += [tls, "--tls-verify", "--tls-ca-path", CA_FILE, "--tls-sni", "relay.example.com"]
    r = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def snail(port, subject, password=PASSWORD, starttls=False):
    """The tutorial's mailx command with its ~/.mailrc, in s-nail 14.9.24's spelling: legacy
    variables work only WITHOUT v15-compat; root reads $MAILRC, not $HOME/.mailrc; sendwait
    makes the exit status report the SMTP result; nosave keeps dead.letter out of $HOME."""
    with tempfile.TemporaryDirectory(prefix="relaylab-snail.") as home:
        rc = Path(home) / "mailrc"
        rc.write_text("set smtp-auth=plain\n"
                      f"set smtp-auth-user={USER}\n"
                      f"set smtp-auth-password={password}\n")
        env = dict(os.environ, MAILRC=str(rc), HOME=home)
        cmd = ["s-nail", "-v", "-s", subject, "-S", f"smtp=smtp://localhost:{port}",
               "-S", "sendwait", "-S", "nosave", "-r", SENDER, RCPT]
        if starttls:
            # The tutorial's ~/.mailrc plus smtp-use-starttls, verifying the test CA.
            cmd[1:1] = ["-S", "smtp-use-starttls", "-S", f"ssl-ca-file={CA_FILE}",
                        "-S", "ssl-ca-no-defaults", "-S", "ssl-verify=strict"]
        r = subprocess.run(cmd, input=b"smtp-handson\n", capture_output=True, env=env,
                           timeout=CLIENT_TIMEOUT_S)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def python_smtplib(port, subject, xclient=None):
    """smtplib's login() picks the best advertised mechanism (CRAM-MD5 > PLAIN > LOGIN)."""
    log = []
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.net",
                          timeout=20) as s:
            if xclient:
                code, text = s.docmd("XCLIENT", xclient)
                log.append(f"XCLIENT -> {code} {text.decode()}")
                if code != 220:
                    return 1, "\n".join(log)
            s.ehlo()
            code, text = s.login(USER, PASSWORD)
            log.append(f"login -> {code} {text.decode()} via {s.esmtp_features.get('auth')}")
            refused = s.sendmail(SENDER, [RCPT],
                                 f"From: {SENDER}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n\r\n"
                                 "interop test body\r\n")
            log.append(f"refused: {refused}")
        return (1 if refused else 0), "\n".join(log)
    except (smtplib.SMTPException, OSError) as exc:
        log.append(f"{type(exc).__name__}: {exc}")
        return 1, "\n".join(log)


def python_smtplib_tls(port, subject, implicit=False):
    """smtplib's starttls() (or SMTP_SSL for wrapper mode) with a verifying context."""
    log = []
    ctx = ssl.create_default_context(cafile=CA_FILE)
    try:
        if implicit:
            s = smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.example.net",
                                 timeout=20, context=ctx)
        else:
            s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.net",
                             timeout=20)
        with s:
            s.ehlo()
            if not implicit:
                log.append(f"before TLS: auth={s.esmtp_features.get('auth')}")
                code, text = s.starttls(context=ctx)
                log.append(f"starttls -> {code} {text.decode()}")
                s.ehlo()
            log.append(f"TLS {s.sock.version()}")
            code, text = s.login(USER, PASSWORD)
            log.append(f"login -> {code} {text.decode()}")
            refused = s.sendmail(SENDER, [RCPT],
                                 f"From: {SENDER}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n\r\n"
                                 "interop test body\r\n")
            log.append(f"refused: {refused}")
        return (1 if refused else 0), "\n".join(log)
    except (smtplib.SMTPException, OSError) as exc:
        log.append(f"{type(exc).__name__}: {exc}")
        return 1, "\n".join(log)


def msmtp(port, subject):
    """msmtp with tls on, tls_starttls on and the test CA as its trust file."""
    with tempfile.TemporaryDirectory(prefix="relaylab-msmtp.") as home:
        conf = Path(home) / "msmtprc"
        conf.write_text("defaults\n"
                        "account relay\n"
                        "host 127.0.0.1\n"
                        f"port {port}\n"
                        "domain client.example.net\n"
                        "tls on\n"
                        "tls_starttls on\n"
                        f"tls_trust_file {CA_FILE}\n"
                        "auth plain\n"
                        f"user {USER}\n"
                        f"password {PASSWORD}\n"
                        f"from {SENDER}\n"
                        "account default : relay\n")
        conf.chmod(0o600)
        msg = f"From: {SENDER}\nTo: {RCPT}\nSubject: {subject}\n\ninterop test body\n"
        r = subprocess.run(["msmtp", "-C", str(conf), "-d", RCPT], input=msg.encode(),
                           capture_output=True, timeout=CLIENT_TIMEOUT_S,
                           env=dict(os.environ, HOME=home))
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def openssl_s_client(port, subject):
    """openssl s_client -starttls smtp, verifying the certificate and its name, then one
    pipelined session (Postfix and relaylab both read commands in order)."""
    auth = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    script = (f"EHLO client.example.net\nAUTH PLAIN {auth}\nMAIL FROM:<{SENDER}>\n"
              f"RCPT TO:<{RCPT}>\nDATA\nSubject: {subject}\n\ninterop test body\n.\nQUIT\n")
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "smtp",
           "-CAfile", CA_FILE, "-verify_return_error", "-verify_hostname", "localhost",
           "-servername", "relay.example.com", "-crlf", "-quiet", "-ign_eof"]
    r = subprocess.run(cmd, input=script.encode(), capture_output=True,
                       timeout=CLIENT_TIMEOUT_S)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    # s_client exits 0 when the connection ends normally; the replies say what happened.
    ok = r.returncode == 0 and "235 2.7.0" in out and "250 2.0.0 Ok: queued as" in out
    return (0 if ok else 1), out


# name: (config, listener, client function, expect accepted, maillog sasl_method)
CASES = {
    "swaks_plain_outside_fix_b": ("fix-b", "submission",
                                  lambda p, s: swaks(p, "PLAIN", s, xclient=OUTSIDE), True,
                                  "PLAIN"),
    "swaks_login_inside_auth_multi": ("auth-multi", "submission",
                                      lambda p, s: swaks(p, "LOGIN", s), True, "LOGIN"),
    "swaks_cram_md5_inside_auth_multi": ("auth-multi", "submission",
                                         lambda p, s: swaks(p, "CRAM-MD5", s), True,
                                         "CRAM-MD5"),
    "swaks_plain_outside_seed_rejected": ("seed", "submission",
                                          lambda p, s: swaks(p, "PLAIN", s, xclient=OUTSIDE),
                                          False, None),
    "snail_tutorial_seed": ("seed", "submission", snail, True, "PLAIN"),
    "snail_wrong_password_seed": ("seed", "submission",
                                  lambda p, s: snail(p, s, password="wrong"), False, None),
    "smtplib_login_outside_fix_a": ("fix-a", "submission",
                                    lambda p, s: python_smtplib(p, s, xclient=OUTSIDE), True,
                                    "PLAIN"),
    "smtplib_login_inside_auth_multi": ("auth-multi", "smtp", python_smtplib, True,
                                        "CRAM-MD5"),
    # TLS: Debian's stock submission (encrypt + smtpd_tls_auth_only) and smtps.
    "swaks_starttls_submission_tls": ("tls", "submission",
                                      lambda p, s: swaks(p, "PLAIN", s, tls="--tls"), True,
                                      "PLAIN"),
    "swaks_tls_on_connect_smtps_tls": ("tls", "smtps",
                                       lambda p, s: swaks(p, "PLAIN", s,
                                                          tls="--tls-on-connect"), True,
                                       "PLAIN"),
    "swaks_no_starttls_submission_tls_refused": ("tls", "submission",
                                                 lambda p, s: swaks(p, "PLAIN", s), False,
                                                 None),
    "snail_starttls_submission_tls": ("tls", "submission",
                                      lambda p, s: snail(p, s, starttls=True), True, "PLAIN"),
    "snail_no_starttls_submission_tls_refused": ("tls", "submission", snail, False, None),
    "msmtp_starttls_submission_tls": ("tls", "submission", msmtp, True, "PLAIN"),
    "smtplib_starttls_submission_tls": ("tls", "submission", python_smtplib_tls, True,
                                        "PLAIN"),
    "smtplib_ssl_smtps_tls": ("tls", "smtps",
                              lambda p, s: python_smtplib_tls(p, s, implicit=True), True,
                              "PLAIN"),
    "openssl_s_client_starttls_submission_tls": ("tls", "submission", openssl_s_client, True,
                                                 "PLAIN"),
}


def wait_maillog(inst, needles, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        log = inst.maillog()
        missing = [n for n in needles if n not in log]
        if not missing or time.monotonic() >= deadline:
            return missing, log
        time.sleep(0.2)


def run_case(name, target, binary):
    config, listener, client, accepted, method = CASES[name]
    subject = f"interop {name} {os.getpid()}"
    factory = (lambda: postfix_instance(config)) if target == "postfix" else \
        (lambda: relaylab_instance(config, binary=binary))
    problems = []
    with factory() as inst:
        rc, out = client(inst.port(listener), subject)
        print(f"client exit status {rc}\n{out[-3000:]}")
        if accepted:
            if rc != 0:
                problems.append(f"client failed with exit status {rc}")
            msgs, why = inst.sink.wait_messages(1, DELIVERY_TIMEOUT_S)
            if why:
                problems.append(why)
            got = [m for m in msgs if f"Subject: {subject}" in m["data"]]
            if msgs and not got:
                problems.append(f"sink messages lack the subject {subject!r}")
            for m in got:
                if m["rcpt_to"] != [f"TO:<{RCPT}>"] or not m["mail_from"].startswith(
                        f"FROM:<{SENDER}>"):
                    problems.append(f"wrong envelope at the sink: {m['mail_from']} "
                                    f"{m['rcpt_to']}")
            needles = [f"sasl_method={method}, sasl_username={USER}", f"to=<{RCPT}>",
                       "status=sent"]
            if config == "tls":
                needles.append(TLS_LOG)
            missing, log = wait_maillog(inst, needles, DELIVERY_TIMEOUT_S)
            if missing:
                problems.append(f"maillog lacks {missing}:\n{log[-3000:]}")
        else:
            if rc == 0:
                problems.append("client reported success for a message the relay must refuse")
            time.sleep(REJECT_SETTLE_S)  # a wrongly accepted message would reach the sink
            if inst.sink.messages():
                problems.append("the sink received a message that should have been refused")
        if problems:
            print(inst.failure_context() if hasattr(inst, "failure_context") else "")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="*")
    ap.add_argument("--target", choices=["postfix", "relaylab"], default="postfix")
    ap.add_argument("--relaylab", help="relaylab binary (for --target relaylab)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.target == "relaylab" and not (a.relaylab or os.environ.get("RELAYLAB_BIN")):
        ap.error("--target relaylab needs --relaylab BIN or $RELAYLAB_BIN")
    ic.install_signal_cleanup()
    names = a.case or list(CASES)
    failed = 0
    for name in names:
        if name not in CASES:
            print(f"unknown case {name}; --list shows them", file=sys.stderr)
            return 2
        try:
            problems = run_case(name, a.target, a.relaylab)
        except ic.instance_error as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(("FAIL " if problems else "ok   ") + name)
        for p in problems:
            print("  " + p)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
