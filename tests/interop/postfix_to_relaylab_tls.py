#!/usr/bin/python3
"""A real Postfix delivers to relaylab with smtp_tls_security_level = encrypt.

    postfix_to_relaylab_tls.py --relaylab BIN

relaylab runs testdata/configs/tls (STARTTLS offered on port 25, the test certificate) with
its own sink as relayhost; Postfix runs testdata/configs/tls-client with relaylab's port 25 as
its relayhost and the test CA as smtp_tls_CAfile. One message submitted to Postfix must reach
relaylab's sink, Postfix must log "Trusted TLS connection established to" and status=sent, and
relaylab must log "TLS connection established from". Standard library only; run as root.
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

DEADLINE_S = 60


def wait_for(fn, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if fn():
            return True
        time.sleep(0.2)
    return fn()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relaylab", required=True)
    a = ap.parse_args()
    ic.install_signal_cleanup()
    subject = f"postfix to relaylab over TLS {os.getpid()}"
    problems = []
    with relaylab_instance("tls", binary=a.relaylab) as rl:
        with postfix_instance("tls-client", relayhost_port=rl.port("smtp")) as pf:
            with smtplib.SMTP("127.0.0.1", pf.port("smtp"), timeout=20) as s:
                s.sendmail("sender@example.com", ["friend@remote.example"],
                           f"Subject: {subject}\r\n\r\nover TLS, Postfix to relaylab\r\n")
            got = wait_for(lambda: any(subject in m["data"] for m in rl.sink.messages()),
                           DEADLINE_S)
            if not got:
                problems.append("relaylab's sink did not receive the message")
            # relaylab's sink files the message before Postfix has read the 250 and logged
            # status=sent: wait for Postfix's lines, bounded.
            pf_needles = ("Trusted TLS connection established to 127.0.0.1[127.0.0.1]:",
                          "status=sent")
            wait_for(lambda: all(n in pf.maillog() for n in pf_needles), DEADLINE_S)
            pf_log = pf.maillog()
            for needle in pf_needles:
                if needle not in pf_log:
                    problems.append(f"Postfix's maillog lacks {needle!r}:\n{pf_log[-2000:]}")
            rl_log = rl.maillog()
            if "TLS connection established from" not in rl_log:
                problems.append(f"relaylab's maillog lacks the TLS line:\n{rl_log[-2000:]}")
            for m in rl.sink.messages():
                if subject in m["data"] and "with ESMTPS id" not in m["data"]:
                    problems.append("relaylab's Received: header lacks ESMTPS:\n" + m["data"])
    print("FAIL" if problems else "ok   postfix_to_relaylab_tls")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
