"""A private Postfix (the oracle) started from a config template in testdata/configs/.

    with postfix_instance("seed") as pf:
        pf.port("submission"); pf.sink.wait_messages(1, 10); pf.maillog()

Follows the project's verified recipe: own config/queue/data directories, loopback ports
chosen at run time, relayhost = loopback sink, no DNS, XCLIENT for 127.0.0.0/8, sasldb made
with saslpasswd2. Postfix missing is an error, never a skip. Run as root.

CLI (for poking at it by hand): postfix_instance.py CONFIG [--hold-s N]
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import instance_common as ic  # noqa: E402

POSTFIX = "/usr/sbin/postfix"
CMD_TIMEOUT_S = 60


class postfix_instance(ic.base_instance):
    kind = "postfix"

    def _run(self, *args):
        # postfix(1) reports errors only to a tty or syslog: script(1) gives it a tty.
        cmd = " ".join([POSTFIX, "-c", str(self.config_dir)] + list(args))
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                           timeout=CMD_TIMEOUT_S, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")

    def _prepare(self):
        if not Path(POSTFIX).exists():
            raise ic.instance_error(f"{POSTFIX} is missing: install Debian's postfix package")
        (self.dir / "spool").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", user="postfix")
        # smtpd runs as postfix and reads the sasldb itself (no saslauthd), as in the tutorial.
        ic.make_sasldb(self.config_dir, self.config_dir / "sasldb2", owner="postfix")
        rc, out = self._run("set-permissions")
        if rc != 0:
            raise ic.instance_error(f"postfix set-permissions failed: {out}")

    def _launch(self):
        rc, out = self._run("start")
        if rc != 0:
            raise ic.instance_error(f"postfix start failed ({rc}): {out}\n"
                                    f"{self.failure_context()}")

    def _master_pid(self):
        f = self.dir / "spool" / "pid" / "master.pid"
        try:
            return int(f.read_text().strip())
        except (OSError, ValueError):
            return 0

    def _alive(self):
        pid = self._master_pid()
        if pid and not ic._pid_alive(pid):
            return f"postfix master (pid {pid}) died"
        return None

    def _watchdog_args(self):
        return ["--postfix-config", str(self.config_dir)]

    def _halt(self):
        if not (self.config_dir / "main.cf").exists():
            return
        pid = self._master_pid()
        if pid:
            self._run("stop")
            deadline = time.monotonic() + ic.STOP_TIMEOUT_S
            while time.monotonic() < deadline and ic._pid_alive(pid):
                time.sleep(0.1)
            ic.kill_pid(pid)

    def failure_context(self):
        return "maillog:\n" + self.maillog()[-4000:]

    def queue_ids(self):
        """Queue IDs still in the queue (postqueue -j is not needed: list the spool)."""
        ids = []
        for sub in ("incoming", "active", "deferred", "hold"):
            d = self.dir / "spool" / sub
            if d.exists():
                ids += [p.name for p in d.rglob("*") if p.is_file()]
        return ids


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--hold-s", type=float, default=600, help="stay up this long (max 3600)")
    a = ap.parse_args()
    ic.install_signal_cleanup()
    with postfix_instance(a.config) as pf:
        print(f"postfix {a.config}: dir={pf.dir} ports={pf.ports} sink={pf.sink.port}",
              flush=True)
        time.sleep(min(a.hold_s, 3600))


if __name__ == "__main__":
    main()
