"""Differential SMTP dialogue tests: Postfix (the oracle) against relaylab, reply by reply.

    differential.py                         Postfix vs golden .ref files (oracle self-check)
    differential.py --record                Postfix -> rewrite testdata/dialogues/*.ref
    differential.py --relaylab BIN          live Postfix vs relaylab, and Postfix vs .ref
    differential.py --relaylab BIN --golden relaylab vs .ref, no Postfix (quick runs)

Every dialogue's S: patterns are checked on every target too. Options: --filter GLOB (repeat),
--jobs N (dialogues in parallel per instance), --deadline-s S (give up and clean up before the
CTest timeout), --keep (keep instance directories), -v (print every transcript).
Exit status: 0 all passed, 1 some dialogue failed, 2 setup error (e.g. Postfix missing).
Run with /usr/bin/python3 as root.
"""

import argparse
import concurrent.futures
import fnmatch
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import dialogue as dl  # noqa: E402
import instance_common as ic  # noqa: E402
from postfix_instance import postfix_instance  # noqa: E402
from relaylab_instance import relaylab_instance  # noqa: E402

DIALOGUES = ic.REPO / "testdata" / "dialogues"
JOBS_MAX = 16
REF_HEADER = "# Golden transcript recorded from Postfix by tests/oracle/differential.py --record."


def ref_path(dlg):
    return dlg.path.with_suffix(".ref")


def read_ref(dlg):
    p = ref_path(dlg)
    if not p.exists():
        return None
    return [l for l in p.read_text(encoding="latin-1").splitlines() if not l.startswith("#")]


def write_ref(dlg, lines):
    head = [REF_HEADER,
            f"# {dlg.name}: config={dlg.config} listener={dlg.listener} client={dlg.client}"]
    ref_path(dlg).write_text("\n".join(head + lines) + "\n", encoding="latin-1")


def load_dialogues(directory, filters):
    out = []
    for p in sorted(Path(directory).glob("*.dlg")):
        if filters and not any(fnmatch.fnmatch(p.stem, f) for f in filters):
            continue
        out.append(dl.parse(p))
    return out


def run_on(instance, dialogues, jobs):
    """{dialogue name: transcript lines} for every dialogue played on instance."""
    def one(d):
        try:
            record = dl.play(d, ic.LISTEN_HOST, instance.port(d.listener))
        except (OSError, dl.dialogue_error) as exc:
            return d, [f"S: [player error: {exc}]"], [f"player error: {exc}"]
        return d, dl.transcript(record), dl.check_patterns(d, record)

    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for d, lines, problems in pool.map(one, dialogues):
            results[d.name] = (lines, problems)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relaylab", help="relaylab binary: compare it with Postfix")
    ap.add_argument("--golden", action="store_true",
                    help="compare relaylab with the .ref files instead of a live Postfix")
    ap.add_argument("--record", action="store_true", help="rewrite .ref files from Postfix")
    ap.add_argument("--dialogues", default=str(DIALOGUES))
    ap.add_argument("--filter", action="append", default=[])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--deadline-s", type=float, default=3000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.golden and not a.relaylab:
        ap.error("--golden needs --relaylab")
    if a.record and a.relaylab:
        ap.error("--record runs Postfix only")
    jobs = max(1, min(a.jobs, JOBS_MAX))
    ic.install_signal_cleanup()
    started = time.monotonic()

    try:
        dialogues = load_dialogues(a.dialogues, a.filter)
    except dl.dialogue_error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not dialogues:
        print("error: no dialogues selected", file=sys.stderr)
        return 2

    targets = []  # (label, factory)
    if not a.golden:
        targets.append(("postfix", lambda c: postfix_instance(c, keep=a.keep)))
    if a.relaylab:
        targets.append(("relaylab", lambda c: relaylab_instance(c, binary=a.relaylab,
                                                                keep=a.keep)))
    by_config = {}
    for d in dialogues:
        by_config.setdefault(d.config, []).append(d)

    failures, passed = [], 0
    for config, group in sorted(by_config.items()):
        if time.monotonic() - started > a.deadline_s:
            failures.append((f"config {config}", f"deadline {a.deadline_s:g}s exceeded"))
            break
        results = {}
        for label, factory in targets:
            try:
                with factory(config) as inst:
                    results[label] = run_on(inst, group, jobs)
            except ic.instance_error as exc:
                print(f"error: {label} with config {config}: {exc}", file=sys.stderr)
                return 2
        for d in group:
            problems = []
            for label in results:
                lines, pats = results[label][d.name]
                problems += [f"{label}: S: pattern {p}" for p in pats]
                if a.verbose:
                    print(f"--- {d.name} on {label}\n" + "\n".join(lines))
            pf = results["postfix"][d.name][0] if "postfix" in results else None
            if a.record:
                write_ref(d, pf)
            if a.relaylab and not a.golden:
                other, other_name = pf, "postfix (live)"
            else:
                other, other_name = read_ref(d), "postfix (golden .ref)"
                if other is None and not a.record:
                    problems.append(f"no golden file {ref_path(d).name}: run --record")
            mine_label = "relaylab" if a.relaylab else "postfix (live)"
            mine = results["relaylab" if a.relaylab else "postfix"][d.name][0]
            if other is not None and not a.record and mine != other:
                table, first = dl.side_by_side(other, mine, other_name, mine_label)
                problems.append(f"transcripts differ at line {first + 1}:\n{table}")
            if a.relaylab and not a.golden:
                # The live run also checks the oracle against its golden file, so this one run
                # proves what "differential.py" alone (Postfix vs .ref) does.
                ref = read_ref(d)
                if ref is None:
                    problems.append(f"no golden file {ref_path(d).name}: run --record")
                elif pf != ref:
                    table, first = dl.side_by_side(ref, pf, "postfix (golden .ref)",
                                                   "postfix (live)")
                    problems.append(f"Postfix differs from its .ref at line {first + 1}:\n"
                                    f"{table}")
            if problems:
                failures.append((d.name, "\n".join(problems)))
                print(f"FAIL {d.name} ({d.config}/{d.listener}/{d.client})", flush=True)
            else:
                passed += 1
                print(f"ok   {d.name}", flush=True)

    if not a.record:
        names = {d.name for d in load_dialogues(a.dialogues, [])}
        for ref in sorted(Path(a.dialogues).glob("*.ref")):
            if ref.stem not in names and not a.filter:
                failures.append((ref.name, "golden file without a dialogue"))
    for name, why in failures:
        print(f"\n=== {name}\n{why}")
    mode = "record" if a.record else ("golden" if a.golden else
                                      ("live" if a.relaylab else "self-check"))
    print(f"\n{mode}: {passed} passed, {len(failures)} failed, {len(dialogues)} dialogues, "
          f"{time.monotonic() - started:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
