"""Interop tests of the fakes against REAL peers (CTest label `interop`).

    fakes_interop.py --relaylab PATH CASE      (CASE from --list)

swaks and a private Postfix (relayhost = the fake MX) deliver into `relaylab mx`;
`relaylab send` and `relaylab load` authenticate against a private Postfix with Cyrus SASL
(sasldb); `relaylab load` and Postfix's smtp-source agree on message counts against the same
fake MX. Postfix comes from tests/oracle/postfix_instance.py (the project's verified recipe).
Standard library only; failures raise with what was seen. Missing tools fail, never skip.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "oracle"))
import instance_common as ic  # noqa: E402
from postfix_instance import postfix_instance  # noqa: E402

SWAKS = "/usr/bin/swaks"
SMTP_SOURCE = "/usr/sbin/smtp-source"
USER = "smtp-auth@example.com"
PASSWORD = "relay-pass-1"
CMD_TIMEOUT_S = 60


class failure(Exception):
    pass


def run(cmd, stdin=b"", env=None):
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=CMD_TIMEOUT_S, env=env)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class fake_mx:
    """`relaylab mx` on a free loopback port with a Maildir."""

    def __init__(self, relaylab, script=None):
        self.dir = Path(tempfile.mkdtemp(prefix="relaylab-fakemx."))
        self.dir.chmod(0o755)
        cmd = [relaylab, "mx", "--listen", "127.0.0.1:0", "--maildir", str(self.dir / "md"), "-v"]
        if script:
            (self.dir / "script").write_text(script)
            cmd += ["--script", str(self.dir / "script")]
        self.out = open(self.dir / "out", "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", (self.dir / "out").read_text())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise failure(f"relaylab mx did not start: {(self.dir / 'out').read_text()}")

    def messages(self):
        return [p.read_bytes() for p in sorted((self.dir / "md" / "new").glob("*"))]

    def wait_messages(self, n, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            time.sleep(0.2)
        raise failure(f"fake MX got {len(self.messages())} message(s), wanted {n}: "
                      f"{(self.dir / 'out').read_text()[-2000:]}")

    def stop(self):
        """Stops it with SIGTERM; returns its output (with the summary line)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        text = (self.dir / "out").read_text()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return text


def summary_count(text, key):
    m = re.search(rf"relaylab mx: .*\b{key}=(\d+)", text)
    if not m:
        raise failure(f"no summary line in: {text[-2000:]}")
    return int(m.group(1))


def case_swaks_to_mx(relaylab):
    mx = fake_mx(relaylab, 'rcpt nobody@x.example reply "550 5.1.1 <nobody@x.example>: no"\n')
    try:
        rc, out, err = run([SWAKS, "--server", f"127.0.0.1:{mx.port}", "--from", "a@client.example",
                            "--to", "bob@x.example", "--header", "Subject: from swaks",
                            "--body", "hello from swaks"])
        if rc != 0:
            raise failure(f"swaks failed ({rc}): {out}{err}")
        msgs = mx.wait_messages(1)
        if b"Subject: from swaks" not in msgs[0] or b"hello from swaks" not in msgs[0]:
            raise failure(f"unexpected content: {msgs[0]!r}")
        rc, out, err = run([SWAKS, "--server", f"127.0.0.1:{mx.port}", "--from", "a@client.example",
                            "--to", "nobody@x.example"])
        if rc == 0 or "550 5.1.1 <nobody@x.example>: no" not in out + err:
            raise failure(f"swaks should see the scripted 550: {out}{err}")
    finally:
        text = mx.stop()
    if summary_count(text, "messages") != 1 or summary_count(text, "rejected") != 1:
        raise failure(f"counts: {text}")


def case_postfix_relays_to_mx(relaylab):
    mx = fake_mx(relaylab)
    try:
        with postfix_instance("seed") as pf:
            rc, out, err = run(["postconf", "-c", str(pf.config_dir), "-e",
                                f"relayhost=[127.0.0.1]:{mx.port}"])
            if rc != 0:
                raise failure(f"postconf: {out}{err}")
            rc, out = pf._run("reload")
            if rc != 0:
                raise failure(f"postfix reload: {out}")
            time.sleep(1.0)
            rc, out, err = run([SWAKS, "--server", f"127.0.0.1:{pf.port('smtp')}",
                                "--from", "sender@relay.example.com",
                                "--to", "friend@remote.example",
                                "--header", "Subject: via postfix", "--body", "relayed body"])
            if rc != 0:
                raise failure(f"swaks into postfix failed ({rc}): {out}{err}")
            msgs = mx.wait_messages(1, 60)
            m = msgs[0]
            if b"relayed body" not in m or b"by relay.example.com (Postfix)" not in m:
                raise failure(f"unexpected content: {m!r}\n{pf.maillog()}")
            # The fake MX files the message before it answers 250, and Postfix logs its
            # status=sent line only after that reply: wait for the line, bounded.
            relay = f"relay=127.0.0.1[127.0.0.1]:{mx.port}"
            deadline = time.monotonic() + 30
            while relay not in pf.maillog() and time.monotonic() < deadline:
                time.sleep(0.2)
            if relay not in pf.maillog():
                raise failure(f"postfix did not log the fake MX as relay:\n{pf.maillog()}")
    finally:
        text = mx.stop()
    if "from=<sender@relay.example.com> to=<friend@remote.example>" not in text:
        raise failure(f"fake MX did not log the envelope: {text}")


def case_send_auth_postfix(relaylab):
    with postfix_instance("auth-multi") as pf:
        port = pf.port("submission")
        for i, mech in enumerate(("plain", "login", "cram-md5")):
            with tempfile.NamedTemporaryFile("w", suffix=".mailrc", delete=False) as rc_file:
                rc_file.write(f"set smtp-auth={mech}\nset smtp-auth-user={USER}\n"
                              f"set smtp-auth-password={PASSWORD}\n")
            env = dict(os.environ, MAILRC=rc_file.name)
            rc, out, err = run([relaylab, "send", "-v", "-s", f"seed {mech}", "-S",
                                f"smtp=smtp://127.0.0.1:{port}", "-r", "hogehoge@fugafuga.com",
                                "friend@remote.example"], stdin=b"body line\n", env=env)
            os.unlink(rc_file.name)
            if rc != 0 or "235 2.7.0 Authentication successful" not in err:
                raise failure(f"send {mech}: rc={rc}\n{out}{err}\n{pf.maillog()}")
            msgs, why = pf.sink.wait_messages(i + 1, 60)
            if why:
                raise failure(f"send {mech}: {why}\n{pf.maillog()}")
            if f"sasl_method={mech.upper()}, sasl_username={USER}" not in pf.maillog():
                raise failure(f"send {mech}: no sasl log line\n{pf.maillog()}")
        # A wrong password fails with mailx's status 4.
        rc, out, err = run([relaylab, "send", "-S", f"smtp=smtp://127.0.0.1:{port}",
                            "-S", "smtp-auth=plain", "-S", f"smtp-auth-user={USER}",
                            "-S", "smtp-auth-password=wrong", "-r", "a@b.example",
                            "friend@remote.example"], stdin=b"x\n", env=dict(os.environ,
                                                                              MAILRC="/dev/null"))
        if rc != 4 or "535 5.7.8 Error: authentication failed" not in err:
            raise failure(f"wrong password: rc={rc} {out}{err}")


def case_load_auth_postfix(relaylab):
    with postfix_instance("auth-multi") as pf:
        port = pf.port("submission")
        for mech, n in (("PLAIN", 12), ("LOGIN", 8)):
            rc, out, err = run([relaylab, "load", "--json", "-s", "3", "-m", str(n),
                                "-f", "load@client.example", "-t", "friend@remote.example",
                                "--auth", f"{mech}:{USER}:{PASSWORD}", f"127.0.0.1:{port}"])
            if rc != 0 or f'"messages_ok":{n},' not in out or f'"auth_ok":{n},' not in out:
                raise failure(f"load {mech}: rc={rc}\n{out}{err}\n{pf.maillog()[-3000:]}")
        msgs, why = pf.sink.wait_messages(20, 90)
        if why:
            raise failure(f"{why}\n{pf.maillog()[-3000:]}")


def case_load_vs_smtp_source(relaylab):
    mx = fake_mx(relaylab)
    try:
        rc, out, err = run([SMTP_SOURCE, "-s", "4", "-m", "40", "-l", "200", "-f", "s@x.example",
                            "-t", "d@x.example", f"127.0.0.1:{mx.port}"])
        if rc != 0:
            raise failure(f"smtp-source failed ({rc}): {out}{err}")
        mx.wait_messages(40)
        rc, out, err = run([relaylab, "load", "--json", "-s", "4", "-m", "40", "-l", "200",
                            "-f", "s@x.example", "-t", "d@x.example", f"127.0.0.1:{mx.port}"])
        if rc != 0 or '"messages_ok":40,' not in out:
            raise failure(f"relaylab load: rc={rc}\n{out}{err}")
        mx.wait_messages(80)
        # -d: both reuse connections.
        rc, out, err = run([SMTP_SOURCE, "-d", "-s", "2", "-m", "10", f"127.0.0.1:{mx.port}"])
        rc2, out2, err2 = run([relaylab, "load", "--json", "-d", "-s", "2", "-m", "10",
                               f"127.0.0.1:{mx.port}"])
        if rc != 0 or rc2 != 0 or '"messages_ok":10,' not in out2 or '"connections":2,' not in out2:
            raise failure(f"-d runs: {rc} {out}{err} / {rc2} {out2}{err2}")
        mx.wait_messages(100)
    finally:
        text = mx.stop()
    if summary_count(text, "messages") != 100:
        raise failure(f"counts disagree: {text[-500:]}")
    if summary_count(text, "sessions") != 40 + 40 + 2 + 2:
        raise failure(f"session counts disagree: {text[-500:]}")


CASES = {
    "swaks_to_mx": case_swaks_to_mx,
    "postfix_relays_to_mx": case_postfix_relays_to_mx,
    "send_auth_postfix": case_send_auth_postfix,
    "load_auth_postfix": case_load_auth_postfix,
    "load_vs_smtp_source": case_load_vs_smtp_source,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--relaylab")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.case not in CASES or not a.relaylab:
        ap.error("need --relaylab PATH and a CASE from --list")
    for tool in (SWAKS, SMTP_SOURCE):
        if not Path(tool).exists():
            print(f"FAIL: {tool} is missing", file=sys.stderr)
            return 1
    ic.install_signal_cleanup()
    try:
        CASES[a.case](a.relaylab)
    except (failure, ic.instance_error) as e:
        print(f"FAIL {a.case}: {e}", file=sys.stderr)
        return 1
    print(f"ok {a.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
