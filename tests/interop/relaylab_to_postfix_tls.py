#!/usr/bin/python3
"""relaylab's delivery agent speaks STARTTLS to a real Postfix.

    relaylab_to_postfix_tls.py --relaylab BIN [CASE...]

Each case runs a Postfix MX (testdata/configs/tls: STARTTLS with the test certificate, or
seed: no TLS) with its own sink, and relaylab with the MX as relayhost. One message goes to
relaylab; the case checks what reached the MX's sink and relaylab's maillog:
  encrypt     tls-client -> tls:  delivered, "Trusted TLS connection established to"
  verify      tls-verify -> tls:  delivered, "Verified TLS connection established to"
  wrong_ca    tls-wrong-ca -> tls: deferred "Server certificate not verified", nothing sent
  not_offered tls-client -> seed: deferred "TLS is required, but was not offered by host"
  wrapper     tls-wrapper -> tls's smtps port (smtpd_tls_wrappermode): relaylab's smtps
              transport (-o smtp_tls_wrappermode=yes at verify): delivered, "Verified TLS ..."
"""

import argparse
import os
import smtplib
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oracle"))
import instance_common as ic  # noqa: E402
from postfix_instance import postfix_instance  # noqa: E402
from relaylab_instance import relaylab_instance  # noqa: E402

DEADLINE_S = 30
CASES = {
    # name: (relaylab config, MX config, delivered?, maillog needles[, MX listener])
    "encrypt": ("tls-client", "tls", True,
                ["Trusted TLS connection established to 127.0.0.1[127.0.0.1]:", "status=sent"]),
    "verify": ("tls-verify", "tls", True,
               ["Verified TLS connection established to 127.0.0.1[127.0.0.1]:", "status=sent"]),
    "wrong_ca": ("tls-wrong-ca", "tls", False,
                 ["server certificate verification failed for 127.0.0.1[127.0.0.1]:",
                  "status=deferred (Server certificate not verified)"]),
    "not_offered": ("tls-client", "seed", False,
                    ["status=deferred (TLS is required, but was not offered by host "
                     "127.0.0.1[127.0.0.1])"]),
    "wrapper": ("tls-wrapper", "tls", True,
                ["Verified TLS connection established to 127.0.0.1[127.0.0.1]:", "status=sent"],
                "smtps"),
}


def wait_for(fn, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if fn():
            return True
        time.sleep(0.2)
    return fn()


def run(name, binary):
    rl_config, mx_config, delivered, needles = CASES[name][:4]
    mx_role = CASES[name][4] if len(CASES[name]) > 4 else "smtp"
    subject = f"relaylab to postfix {name} {os.getpid()}"
    problems = []
    with postfix_instance(mx_config) as mx:
        with relaylab_instance(rl_config, binary=binary, relayhost_port=mx.port(mx_role)) as rl:
            with smtplib.SMTP("127.0.0.1", rl.port("smtp"), timeout=20) as s:
                s.sendmail("sender@example.com", ["friend@remote.example"],
                           f"Subject: {subject}\r\n\r\nrelaylab over TLS\r\n")
            found = wait_for(lambda: all(n in rl.maillog() for n in needles), DEADLINE_S)
            if not found:
                missing = [n for n in needles if n not in rl.maillog()]
                problems.append(f"relaylab's maillog lacks {missing}:\n{rl.maillog()[-2500:]}")
            arrived = wait_for(lambda: any(subject in m["data"] for m in mx.sink.messages()),
                               DEADLINE_S if delivered else 2)
            if arrived != delivered:
                problems.append("the MX's sink " + ("did not receive" if delivered else
                                                     "received") + " the message")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="*")
    ap.add_argument("--relaylab", required=True)
    a = ap.parse_args()
    ic.install_signal_cleanup()
    failed = 0
    for name in a.case or list(CASES):
        problems = run(name, a.relaylab)
        print(("FAIL " if problems else "ok   ") + name)
        for p in problems:
            print("  " + p)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
