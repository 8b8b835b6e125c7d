"""Issue 15's summary: plays the generated smuggling and open-relay dialogues
(tests/oracle/gen_hardening.py) against relaylab (and Postfix with --postfix) and prints the
counts: vectors tried, messages smuggled (0 where protected), relays opened (0).

A message is smuggled when one DATA yields more than one "queued as" reply; a relay is opened
when a probe from outside mynetworks puts any message into the relayhost sink. relaylab relay's
start-up warnings are checked too: every listener left at smtpd_forbid_bare_newline = no, or
with clients excluded from it, is named.

    hardening_summary.py --relaylab build/relaylab [--postfix] [--keep]

Exit status: 0 all counts as required, 1 otherwise, 2 setup error. Run as root with
/usr/bin/python3 (the oracle recipe; see tests/oracle/README.md).
"""

import argparse
import concurrent.futures
import re
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import dialogue as dl  # noqa: E402
import gen_hardening as gen  # noqa: E402
import instance_common as ic  # noqa: E402
from postfix_instance import postfix_instance  # noqa: E402
from relaylab_instance import relaylab_instance  # noqa: E402

JOBS = 8
SINK_SETTLE_S = 3.0  # relayed mail reaches the sink within this after the last probe
# Listeners relaylab relay must warn about, per config (testdata/configs/*/master.cf roles).
EXPECTED_WARNINGS = {
    "seed": ["smtpd_forbid_bare_newline = no"] * 2,
    "bare-normalize": ["smtpd_forbid_bare_newline_exclusions = 127.0.0.0/8"],
    "bare-reject": ["smtpd_forbid_bare_newline_exclusions = 127.0.0.0/8"],
}


def play_all(inst, dialogues):
    def one(d):
        try:
            return d.name, dl.transcript(dl.play(d, ic.LISTEN_HOST, inst.port(d.listener)))
        except (OSError, dl.dialogue_error) as exc:
            return d.name, [f"S: [player error: {exc}]"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=JOBS) as pool:
        return dict(pool.map(one, dialogues))


def queued(lines):
    return sum(int(re.match(r"S\*(\d+):", l).group(1)) if l.startswith("S*") else 1
               for l in lines if "queued as" in l)


def run_target(label, factory, rows, dialogues, counts, problems):
    by_config = {}
    for name, kind, protected in rows:
        d = dialogues[name]
        group = "relay" if kind == "relay" else d.config
        by_config.setdefault(group, []).append((d, kind, protected))
    for group, items in sorted(by_config.items()):
        config = items[0][0].config
        with factory(config) as inst:
            results = play_all(inst, [d for d, _k, _p in items])
            for d, kind, protected in items:
                lines = results[d.name]
                if any("[player error" in l for l in lines):
                    problems.append(f"{label}: {d.name}: {lines[-1]}")
                if kind == "smuggle":
                    counts["smuggling vectors tried"] += 1
                    extra = max(0, queued(lines) - 1)
                    key = ("messages smuggled (protected)" if protected
                           else "messages smuggled (unprotected, Postfix 3.7 default)")
                    counts[key] += extra
                else:
                    counts["open-relay vectors tried"] += sum(1 for l in lines
                                                              if l.startswith("C: RCPT TO:"))
            if group == "relay":
                time.sleep(SINK_SETTLE_S)
                counts["relays opened"] += len(inst.sink.messages())
            if label == "relaylab" and group != "relay":
                out = (inst.dir / "relaylab.out").read_text(errors="replace")
                got = [l for l in out.splitlines() if ": warning: service " in l
                       and "CVE-2023-51764" in l]
                for want in EXPECTED_WARNINGS.get(config, []):
                    hit = [l for l in got if want in l]
                    if not hit:
                        problems.append(f"relaylab {config}: no start-up warning with {want!r}")
                    else:
                        got.remove(hit[0])
                if got:
                    problems.append(f"relaylab {config}: unexpected warnings {got}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relaylab", required=True)
    ap.add_argument("--postfix", action="store_true", help="count on a live Postfix as well")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    ic.install_signal_cleanup()
    rows = gen.kinds()
    dialogues = {n: dl.parse(gen.OUT / f"{n}.dlg") for n, _k, _p in rows}
    targets = [("relaylab", lambda c: relaylab_instance(c, binary=a.relaylab, keep=a.keep))]
    if a.postfix:
        targets.insert(0, ("postfix", lambda c: postfix_instance(c, keep=a.keep)))
    problems, table = [], {}
    for label, factory in targets:
        counts = {k: 0 for k in ("smuggling vectors tried", "messages smuggled (protected)",
                                 "messages smuggled (unprotected, Postfix 3.7 default)",
                                 "open-relay vectors tried", "relays opened")}
        try:
            run_target(label, factory, rows, dialogues, counts, problems)
        except ic.instance_error as exc:
            print(f"error: {label}: {exc}", file=sys.stderr)
            return 2
        table[label] = counts
        if counts["messages smuggled (protected)"]:
            problems.append(f"{label}: messages smuggled with the protection on")
        if counts["relays opened"]:
            problems.append(f"{label}: relays opened")
    for label, counts in table.items():
        print(f"{label}:")
        for k, v in counts.items():
            print(f"  {k:<55} {v}")
    if "postfix" in table and table["postfix"] != table["relaylab"]:
        problems.append("postfix and relaylab counts differ")
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
