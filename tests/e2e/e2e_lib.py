"""Shared pieces of the end-to-end tests: a relaylab relay on a private queue directory and
maillog, recording sinks (aiosmtpd via sink.py, Postfix's smtp-sink), and a sender that
records exactly which messages got a 250 and their queue IDs. Loopback only; every wait is
bounded; every process started here is stopped here (by its own pid)."""

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"


class e2e_error(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise e2e_error(f"nothing listens on 127.0.0.1:{port} after {deadline_s}s")


def stop_process(proc, timeout_s=10.0):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


class relay:
    """`relaylab relay` with main.cf/master.cf in DIR/etc, queue in DIR/queue, maillog DIR/maillog."""

    def __init__(self, binary, directory, sink_port, extra_main=None):
        self.binary = str(binary)
        self.dir = Path(directory)
        self.port = free_port()
        self.proc = None
        self.starts = 0
        etc = self.dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.dir / "queue"),
            "myhostname": "relay.example.com",
            "mydomain": "example.com",
            "mydestination": "$myhostname, localhost",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{sink_port}",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            "mail_spool_directory": str(self.dir / "mail"),
            "alias_maps": "",
            "local_recipient_maps": "",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        main.update(extra_main or {})
        (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (etc / "master.cf").write_text(f"127.0.0.1:{self.port} inet n - n - - smtpd\n")
        self.maillog = self.dir / "maillog"

    def start(self, deadline_s=20.0):
        out = open(self.dir / "relay.out", "ab")
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [self.binary, "relay", "--config-dir", str(self.dir / "etc"), "--maillog",
             str(self.maillog), "--ready-fd", str(w)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=(w,),
            start_new_session=True)
        os.close(w)
        out.close()
        self.starts += 1
        end = time.monotonic() + deadline_s
        got = b""
        os.set_blocking(r, False)
        while time.monotonic() < end and b"ready" not in got:
            try:
                chunk = os.read(r, 64)
                if not chunk:
                    break
                got += chunk
            except BlockingIOError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        os.close(r)
        if b"ready" not in got:
            self.kill()
            raise e2e_error("relay did not become ready:\n" + self.output()[-3000:])

    def kill(self):
        """kill -9, as a crash."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def output(self):
        f = self.dir / "relay.out"
        return f.read_text(errors="replace") if f.exists() else ""

    def log_lines(self):
        return self.maillog.read_text(errors="replace").splitlines() if self.maillog.exists() else []

    def queue_files(self):
        """Messages in the queue, as `relaylab queue list` sees them: queue files and mail
        that lives only in the queue journal (journal/J...)."""
        p = subprocess.run([self.binary, "queue", "list", "--queue-dir", str(self.dir / "queue")],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise e2e_error(f"relaylab queue list failed ({p.returncode}): {p.stderr}")
        if p.stdout.startswith("Mail queue is empty"):
            return 0
        m = re.search(r"in (\d+) Requests?\.", p.stdout)
        if not m:
            raise e2e_error("relaylab queue list: no summary line:\n" + p.stdout[-500:])
        return int(m.group(1))

    def removed_lines(self):
        """qmgr's "removed" lines: a message's log lines are complete once it has one (the
        relay unlinks a delivered file first and logs after the deletion is durable)."""
        return sum(1 for line in self.log_lines() if line.endswith(": removed"))

    def wait_queue_empty(self, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.queue_files() == 0:
                return True
            time.sleep(0.2)
        return False


class py_sink:
    """tests/e2e/sink.py: saves every message as DIR/NNNNNN.eml + .json."""

    def __init__(self, directory, deadline_s, port=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "sink.py"), "--port", str(self.port), "--dir", str(self.dir),
             "--deadline-s", str(deadline_s)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        line = self.proc.stdout.readline().decode(errors="replace")
        if not line.startswith("ready"):
            stop_process(self.proc)
            raise e2e_error("sink.py did not start: " + line)

    def messages(self):
        """[(number, meta dict, bytes)] in arrival order."""
        import json
        out = []
        for f in sorted(self.dir.glob("*.eml")):
            meta = json.loads(f.with_suffix(".json").read_text())
            out.append((int(f.stem), meta, f.read_bytes()))
        return out

    def stop(self):
        stop_process(self.proc)


class smtp_sink:
    """Postfix's /usr/sbin/smtp-sink, dumping each transaction to DIR/<name> (-d)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        # smtp-sink runs as nobody (-u) when started as root: it must reach and write the dir.
        os.chmod(self.dir, 0o777)
        os.chmod(self.dir.parent, 0o755)
        self.port = free_port()
        args = ["/usr/sbin/smtp-sink", "-d", str(self.dir) + "/%H%M%S."]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        args += [f"127.0.0.1:{self.port}", "64"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)

    def dumps(self):
        return [f.read_bytes() for f in sorted(self.dir.iterdir()) if f.is_file()]

    def stop(self):
        stop_process(self.proc)


QUEUED_RE = re.compile(r"queued as ([0-9A-Z]+)")


def send(port, sender, recipients, data, helo="client.example.net", timeout_s=30):
    """One message; returns the queue ID from the 250 reply. Raises on anything else."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=timeout_s) as s:
        s.ehlo()
        s.mail(sender)
        for r in recipients:
            code, msg = s.rcpt(r)
            if code != 250:
                raise e2e_error(f"RCPT {r}: {code} {msg!r}")
        code, msg = s.data(data)
        if code != 250:
            raise e2e_error(f"DATA: {code} {msg!r}")
        m = QUEUED_RE.search(msg.decode(errors="replace"))
        return m.group(1) if m else ""


def check(cond, problems, text):
    if not cond:
        problems.append(text)


def finish(name, problems):
    if problems:
        print(f"{name}: FAILED", flush=True)
        for p in problems:
            print("  - " + p, flush=True)
        return 1
    print(f"{name}: ok", flush=True)
    return 0


def main_guard(fn):
    try:
        sys.exit(fn())
    except e2e_error as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
