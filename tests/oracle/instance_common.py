"""Shared pieces of the private relay instances (Postfix oracle and relaylab).

Both instances render the SAME config template (testdata/configs/<name>/) into their own
directory, create the same sasldb with saslpasswd2, start the same loopback sink as relayhost,
and wait (bounded) until every listener accepts connections. Standard library only; run with
Debian's /usr/bin/python3.

Cleanup is layered because a test killed by a timeout must not leave daemons behind:
try/finally in callers, atexit here, SIGTERM/SIGINT turned into SystemExit, and a watchdog
process per instance that stops the daemons when the test process disappears.
"""

import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "testdata" / "configs"
TLS_DIR = REPO / "testdata" / "tls"  # the test CA and server certificates
PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent

LISTEN_HOST = "127.0.0.1"
PORT_RANGE = (20000, 29999)
PORT_TRIES_MAX = 200
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
SASL_USER_FILE = "users"

_live_instances = []


class instance_error(RuntimeError):
    """Raised by start(): the instance could not be brought up (the message says why)."""


def _terminate_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_signal_cleanup():
    """Turns SIGTERM/SIGINT/SIGHUP into SystemExit so finally blocks and atexit run."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _terminate_on_signal)


def _stop_all():
    for inst in list(_live_instances):
        try:
            inst.stop()
        except Exception as exc:  # cleanup must go on for the others
            print(f"warning: cleanup of {inst!r} failed: {exc}", file=sys.stderr)


atexit.register(_stop_all)


START_TRIES_MAX = 3


def free_port(taken=()):
    """A loopback TCP port in PORT_RANGE that can be bound right now (random start)."""
    for _ in range(PORT_TRIES_MAX):
        port = random.randint(*PORT_RANGE)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LISTEN_HOST, port))
            except OSError:
                continue
        return port
    raise instance_error(f"no free port in {PORT_RANGE} after {PORT_TRIES_MAX} tries")


def config_template(name_or_path):
    p = Path(name_or_path)
    if not p.is_absolute() and not (p / "main.cf").exists():
        p = CONFIGS / str(name_or_path)
    if not (p / "main.cf").is_file() or not (p / "master.cf").is_file():
        raise instance_error(f"config template {p} lacks main.cf or master.cf")
    return p


_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def render_config(template, dest, values):
    """Copies the template tree to dest, replacing @NAME@ with values[NAME] in every file.

    Raises instance_error on a placeholder that has no value (a typo in a template).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(template.rglob("*")):
        rel = src.relative_to(template)
        out = dest / rel
        if src.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        text = src.read_text()

        def sub(m):
            key = m.group(1)
            if key not in values:
                raise instance_error(f"{src}: unknown placeholder @{key}@")
            return str(values[key])

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_PLACEHOLDER.sub(sub, text))


def listener_ports(master_cf_template):
    """The role -> placeholder map used by master.cf: which listeners this config has."""
    text = Path(master_cf_template).read_text()
    roles = {}
    for role, key in (("smtp", "PORT_SMTP"), ("submission", "PORT_SUBMISSION"),
                      ("smtps", "PORT_SMTPS"), ("authonly", "PORT_AUTHONLY")):
        if re.search(rf"^[^#\s]\S*@{key}@\s+inet\b", text, re.M):
            roles[role] = key
    return roles


def sasl_users(config_dir):
    """[(user, realm, password)] from the template's users file ("user realm password")."""
    users = []
    f = Path(config_dir) / SASL_USER_FILE
    if not f.exists():
        return users
    for line in f.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, realm, password = line.split(None, 2)
        users.append((user, realm, password))
    return users


def make_sasldb(config_dir, db_path, owner=None):
    """Creates db_path with Debian's saslpasswd2, exactly as the tutorial does (-c -u REALM)."""
    for user, realm, password in sasl_users(config_dir):
        r = subprocess.run(
            ["saslpasswd2", "-p", "-f", str(db_path), "-c", "-u", realm, user],
            input=password.encode(), capture_output=True, timeout=30)
        if r.returncode != 0:
            raise instance_error(f"saslpasswd2 failed for {user}@{realm}: {r.stderr.decode()}")
    if owner and Path(db_path).exists():
        shutil.chown(db_path, group=owner)
        os.chmod(db_path, 0o640)


def wait_port(host, port, timeout_s, alive=None):
    """Waits until host:port accepts a TCP connection; returns None or a reason string."""
    deadline = time.monotonic() + timeout_s
    last = "never tried"
    while time.monotonic() < deadline:
        if alive is not None:
            why = alive()
            if why:
                return why
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return None
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    return f"{host}:{port} did not accept connections within {timeout_s}s ({last})"


class sink:
    """The loopback relayhost: tests/oracle/sink.py in its own process, one file per message."""

    def __init__(self, directory, port):
        self.directory = Path(directory)
        self.port = port
        self.proc = None

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "sink.log", "wb")
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "sink.py"), "--port", str(self.port), "--dir",
             str(self.directory)], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        why = wait_port(LISTEN_HOST, self.port, READY_TIMEOUT_S,
                        lambda: None if self.proc.poll() is None else "sink exited")
        if why:
            raise instance_error(f"sink: {why}: {(self.directory / 'sink.log').read_text()}")

    def messages(self):
        """Received messages as dicts {mail_from, rcpt_to, data} in arrival order."""
        import json
        out = []
        for f in sorted(self.directory.glob("msg-*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except ValueError:
                pass  # being written; the caller polls again
        return out

    def wait_messages(self, count, timeout_s):
        """Polls until at least count messages arrived; returns (messages, reason-or-None)."""
        deadline = time.monotonic() + timeout_s
        while True:
            msgs = self.messages()
            if len(msgs) >= count:
                return msgs, None
            if time.monotonic() >= deadline:
                return msgs, f"sink got {len(msgs)} message(s), wanted {count}, in {timeout_s}s"
            time.sleep(0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None


class base_instance:
    """What both targets share: directory, ports, rendered config, sasldb, sink, watchdog.

    sink_factory(directory, port) makes the relayhost; bench/compare-postfix puts smtp-sink there.
    """

    sink_factory = sink

    kind = "base"

    def __init__(self, config, keep=False, relayhost_port=None):
        """relayhost_port: deliver to that loopback port (another instance) instead of a sink
        of this instance's own."""
        self.relayhost_port = relayhost_port
        self.template = config_template(config)
        self.config_name = self.template.name
        self.keep = keep or bool(os.environ.get("RELAYLAB_KEEP_INSTANCE"))
        self.dir = None
        self.ports = {}
        self.sink = None
        self._watchdog = None
        self._started = False

    def __repr__(self):
        return f"<{self.kind} {self.config_name} {self.dir} {self.ports}>"

    # -- subclass hooks
    def _prepare(self):
        pass

    def _launch(self):
        raise NotImplementedError

    def _alive(self):
        return None

    def _halt(self):
        raise NotImplementedError

    def _watchdog_args(self):
        return []

    def failure_context(self):
        return ""

    # -- public
    @property
    def config_dir(self):
        return self.dir / "etc"

    def port(self, role):
        """Loopback port of the listener with that role ("smtp" or "submission")."""
        if role not in self.ports:
            raise KeyError(f"config {self.config_name} has no {role} listener")
        return self.ports[role]

    def maillog(self):
        f = self.dir / "maillog"
        return f.read_text(errors="replace") if f.exists() else ""

    def start(self):
        """Renders the config, starts sink and daemon, waits for every listener.

        Raises instance_error with the daemon's log when anything fails; stops what was started.
        A port that free_port() found free can be taken by a concurrent test before the daemon
        binds it: that failure ("Address already in use") is retried with new ports, at most
        START_TRIES_MAX times in all.
        """
        for attempt in range(START_TRIES_MAX):
            try:
                return self._start_once()
            except instance_error as exc:
                if "Address already in use" not in str(exc) or attempt + 1 == START_TRIES_MAX:
                    raise
                print(f"note: {self.kind} {self.config_name}: a port was taken meanwhile; "
                      f"retrying with new ports", file=sys.stderr)
                self.ports = {}
                self.sink = None
                self._watchdog = None

    def _start_once(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"relaylab-{self.kind}-{self.config_name}."))
        self.dir.chmod(0o755)  # daemons running as postfix must reach their files
        _live_instances.append(self)
        try:
            taken = set()
            values = {"DIR": self.dir, "CONFIG_DIR": self.config_dir, "TLS_DIR": TLS_DIR}
            for role, key in listener_ports(self.template / "master.cf").items():
                values[key] = free_port(taken)
                taken.add(values[key])
                self.ports[role] = values[key]
            values["PORT_SINK"] = self.relayhost_port or free_port(taken)
            render_config(self.template, self.config_dir, values)
            if not self.relayhost_port:
                self.sink = self.sink_factory(self.dir / "sink", values["PORT_SINK"])
                self.sink.start()
            self._prepare()
            self._launch()
            self._start_watchdog()
            for role, port in self.ports.items():
                why = wait_port(LISTEN_HOST, port, READY_TIMEOUT_S, self._alive)
                if why:
                    raise instance_error(f"{self.kind} {role} listener: {why}\n"
                                         f"{self.failure_context()}")
            self._started = True
            return self
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stops daemon and sink (bounded waits, then SIGKILL) and removes the directory."""
        if self in _live_instances:
            _live_instances.remove(self)
        if self.dir is None:
            return
        try:
            self._halt()
        finally:
            if self.sink:
                self.sink.stop()
            if self._watchdog and self._watchdog.poll() is None:
                self._watchdog.kill()
                self._watchdog.wait(timeout=STOP_TIMEOUT_S)
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                print(f"kept instance directory {self.dir}", file=sys.stderr)
            self.dir = None
            self._started = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _start_watchdog(self):
        args = [PYTHON, str(HERE / "instance_common.py"), "--watchdog", str(os.getpid()),
                "--dir", str(self.dir), "--sink-pid",
                str(self.sink.proc.pid if self.sink and self.sink.proc else 0)]
        if self.keep:
            args.append("--keep")
        self._watchdog = subprocess.Popen(args + self._watchdog_args(),
                                          start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def kill_pid(pid, timeout_s=STOP_TIMEOUT_S):
    """SIGTERM, bounded wait, then SIGKILL. For processes that are not our children."""
    if pid <= 0 or not _pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.1)
    if _pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _watchdog_main(argv):
    """Waits for the test process to vanish, then stops the instance it left behind."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--watchdog", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--sink-pid", type=int, default=0)
    ap.add_argument("--postfix-config")
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    # Bounded: a test never runs longer than a day.
    for _ in range(24 * 3600 * 2):
        if not _pid_alive(a.watchdog):
            break
        time.sleep(0.5)
    if a.postfix_config and Path(a.postfix_config, "main.cf").exists():
        subprocess.run(["postfix", "-c", a.postfix_config, "stop"], capture_output=True,
                       timeout=30)
        pidfile = Path(a.dir) / "spool" / "pid" / "master.pid"
        if pidfile.exists():
            kill_pid(int(pidfile.read_text().strip() or 0))
    kill_pid(a.pid)
    kill_pid(a.sink_pid)
    if not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    _watchdog_main(sys.argv[1:])
