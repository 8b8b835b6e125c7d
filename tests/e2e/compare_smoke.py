"""Smoke test of bench/compare-postfix: one round, 1 session, 20 messages per path (25, 587,
587tls-rsa and 587tls-ecdsa).

Checks behaviour only: exit status 0 (every message accepted and delivered by both relays),
compare.json with a run per relay and path whose counts add up, and a well-formed compare.svg.
Usage: compare_smoke.py COMPARE_SCRIPT RELAYLAB OUT_DIR
"""
import json
import shutil
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

PATHS = ("25", "587", "587tls-rsa", "587tls-ecdsa")
script, relaylab, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
shutil.rmtree(out, ignore_errors=True)
p = subprocess.run(["/usr/bin/python3", script, "--relaylab", relaylab, "--rounds", "1",
                    "--sessions", "1", "--messages", "1:20", "--paths", ",".join(PATHS),
                    "--out", str(out)],
                   capture_output=True, text=True, timeout=200)
print(p.stdout[-3000:], p.stderr[-2000:])
problems = []
if p.returncode != 0:
    problems.append(f"exit status {p.returncode}")
doc = json.loads((out / "compare.json").read_text()) if (out / "compare.json").exists() else {}
runs = doc.get("runs", [])
seen = {(r["relay"], r["path"]) for r in runs}
if seen != {(relay, path) for relay in ("relaylab", "postfix") for path in PATHS}:
    problems.append(f"runs for {sorted(seen)}")
for r in runs:
    if r["accepted"] != 20 or r["delivered"] != 20:
        problems.append(f"{r['relay']} {r['path']}: accepted {r['accepted']} delivered "
                        f"{r['delivered']}")
    if r["relay_cpu_s"] < 0 or r["relay_peak_pss_kb"] <= 0:
        problems.append(f"{r['relay']} {r['path']}: accounting {r['relay_cpu_s']} "
                        f"{r['relay_peak_pss_kb']}")
if not doc.get("summary") or doc["summary"][0]["ratio"]["delivered_per_s"] is None:
    problems.append("no ratio in the summary")
try:
    svg = xml.dom.minidom.parse(str(out / "compare.svg"))
    if len(svg.getElementsByTagName("polyline")) != 2 * len(PATHS):
        problems.append("compare.svg lacks a line per relay and path")
except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
    problems.append(f"compare.svg: {exc}")
if problems:
    print("compare-postfix smoke: FAILED\n  - " + "\n  - ".join(problems))
    sys.exit(1)
print("compare-postfix smoke: ok")
