"""relaylab's relay daemon started exactly like the Postfix oracle: the same rendered
main.cf/master.cf/sasl/smtpd.conf (from testdata/configs/<name>/), the same sasldb, the same
loopback sink, then `relaylab relay --config-dir DIR/etc`.

    with relaylab_instance("seed", binary="build/relaylab") as rl: rl.port("smtp")

The binary comes from the argument or $RELAYLAB_BIN. stdout/stderr go to DIR/relaylab.out.
CLI: relaylab_instance.py CONFIG --relaylab PATH [--hold-s N]
"""

import os
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import instance_common as ic  # noqa: E402


class relaylab_instance(ic.base_instance):
    kind = "relaylab"

    def __init__(self, config, binary=None, keep=False, relayhost_port=None):
        super().__init__(config, keep=keep, relayhost_port=relayhost_port)
        self.binary = binary or os.environ.get("RELAYLAB_BIN")
        if not self.binary:
            raise ic.instance_error("relaylab binary not given (argument or $RELAYLAB_BIN)")
        self.binary = str(Path(self.binary).resolve())
        self.proc = None

    def _prepare(self):
        if not os.access(self.binary, os.X_OK):
            raise ic.instance_error(f"{self.binary} is not an executable")
        ic.make_sasldb(self.config_dir, self.config_dir / "sasldb2")

    def _launch(self):
        out = open(self.dir / "relaylab.out", "wb")
        self.proc = subprocess.Popen([self.binary, "relay", "--config-dir", str(self.config_dir)],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()

    def _watchdog_args(self):
        return ["--pid", str(self.proc.pid if self.proc else 0)]

    def _alive(self):
        if self.proc and self.proc.poll() is not None:
            return f"relaylab exited with {self.proc.returncode}"
        return None

    def _halt(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=ic.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=ic.STOP_TIMEOUT_S)
        self.proc = None

    def failure_context(self):
        f = self.dir / "relaylab.out" if self.dir else None
        out = f.read_text(errors="replace")[-4000:] if f and f.exists() else ""
        return f"relaylab output:\n{out}\nmaillog:\n{self.maillog()[-2000:]}"

    def queue_ids(self):
        return []


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--relaylab")
    ap.add_argument("--hold-s", type=float, default=600)
    a = ap.parse_args()
    ic.install_signal_cleanup()
    with relaylab_instance(a.config, binary=a.relaylab) as rl:
        print(f"relaylab {a.config}: dir={rl.dir} ports={rl.ports} sink={rl.sink.port}",
              flush=True)
        time.sleep(min(a.hold_s, 3600))


if __name__ == "__main__":
    main()
