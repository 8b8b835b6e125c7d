#!/usr/bin/env python3
"""doc_examples_test.py RELAYLAB SOURCE_DIR DOC.md: runs every example of a document.

In ```console blocks, a line `$ COMMAND` is run with sh from SOURCE_DIR (`relaylab` at the start
of the command is the binary under test) and what it prints (standard output, then standard
error) must be the lines that follow, up to the next `$ ` line or the end of the block; a
trailing `[exit N]` line is the exit status expected (0 when absent). `wall=...` fields are
masked, being the only thing that reads the real clock. The binary's directory comes first in
PATH, so scripts the examples run find `relaylab` too.
"""
import os
import re
import subprocess
import sys

relaylab, source_dir, doc = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(doc, encoding="utf-8").read()
examples = []
for block in re.findall(r"```console\n(.*?)```", text, re.S):
    current = None
    for line in block.split("\n")[:-1]:
        if line.startswith("$ "):
            current = [line[2:], []]
            examples.append(current)
        elif current is not None:
            current[1].append(line)
if not examples:
    sys.exit(f"{doc}: no ```console examples")
mask = lambda s: re.sub(r"wall=\S+", "wall=*", s)
failed = 0
for command, expected in examples:
    status = 0
    if expected and re.fullmatch(r"\[exit \d+\]", expected[-1]):
        status = int(expected.pop()[6:-1])
    run = re.sub(r"^relaylab\b", relaylab, command)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(relaylab)) + os.pathsep + env.get("PATH", "")
    p = subprocess.run(["sh", "-c", run], cwd=source_dir, capture_output=True, text=True,
                       timeout=120, env=env)
    got = mask(p.stdout + p.stderr).rstrip("\n").split("\n") if (p.stdout + p.stderr) else []
    want = [mask(l) for l in expected]
    while want and want[-1] == "":
        want.pop()
    if got != want or p.returncode != status:
        failed += 1
        print(f"FAIL: $ {command}\n  exit {p.returncode}, expected {status}")
        print("  expected:\n    " + "\n    ".join(want))
        print("  got:\n    " + "\n    ".join(got))
    else:
        print(f"ok: $ {command}")
sys.exit(1 if failed else 0)
