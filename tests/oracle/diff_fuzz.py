"""Differential fuzzer: random, structured SMTP dialogues against Postfix and relaylab.

    diff_fuzz.py --relaylab BIN [--count N] [--seconds S] [--seed K] [--jobs J] [--out DIR]

Each dialogue is generated from a seed (command order, pipelining groups, AUTH steps, odd
addresses, line endings, end-of-data look-alikes, junk), played on a Postfix and a relaylab
started with the same config (testdata/configs/fuzz: the seed tutorial's, without the sleep
after errors), and the two transcripts compared after the suite's normalisation (queue IDs,
the loopback client's name). The first dialogue that differs is written to DIR as a
ready-to-add .dlg file (with both transcripts side by side in a comment) and the run stops
(--max-differences K: after K, each written, with its first differing line printed).

With --expect FILE, the run passes only when exactly the differences listed there occur
(the known gaps, each still open, none new); --write-expect FILE writes that list.

Bounded: at most N dialogues (default 1000) and S seconds (default 600). Prints
"dialogues N, differences D, seconds T". Exit status: 0 no difference (or exactly the
expected ones), 1 a difference (its file is named), 2 setup error. Run with
/usr/bin/python3 as root.
"""

import argparse
import base64
import concurrent.futures
import random
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import dialogue as dl  # noqa: E402
import instance_common as ic  # noqa: E402
from postfix_instance import postfix_instance  # noqa: E402
from relaylab_instance import relaylab_instance  # noqa: E402

CONFIG = ic.REPO / "testdata" / "configs" / "fuzz"
REPLY_TIMEOUT_S = 3.0

USER, REALM, PASSWORD = "smtp-auth", "example.com", "relay-pass-1"
LOCAL = ["alice", "postmaster", "root", "nosuchuser", "Alice", "alice+tag"]
DOMAINS = ["relay.example.com", "lab.example", "localhost", "example.com", "remote.example",
           "victim.example.net", "[127.0.0.1]", "[IPv6:::1]", "RELAY.EXAMPLE.COM", "bad_domain",
           "relay.example.com.", ""]
TRICKS = ["{u}@{d}", "{u}%victim.example.net@{d}", '"{u}@victim.example.net"@{d}',
          "@{d}:{u}@victim.example.net", "victim.example.net!{u}@{d}", "{u}", '"{u}"@{d}',
          "{u}@{d}@victim.example.net", '\\"{u}@{d}', "{u} @{d}"]
HELO_NAMES = ["client.example.net", "[127.0.0.1]", "localhost", "bad name", "x" * 300, "",
              "relay.example.com", "[300.1.1.1]", "a..b"]
MAIL_PARAMS = ["", " SIZE=100", " SIZE=999999999999", " BODY=8BITMIME", " BODY=7BIT",
               " SMTPUTF8", " RET=HDRS", " ENVID=abc", " FOO=bar", " AUTH=<>", " SIZE="]
RCPT_PARAMS = ["", " NOTIFY=SUCCESS,FAILURE", " NOTIFY=NEVER", " ORCPT=rfc822;a@b.example",
               " NOTIFY=BOGUS", " FOO=bar"]
EODS = ["\r\n.\r\n", "\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n\0.\r\n"]
LINE_ENDS = ["\r\n"] * 8 + ["\n", "\r", "\r\r\n"]


def esc(text):
    """Raw text to .dlg R: text (dialogue.unescape's inverse)."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\0":
            out.append("\\0")
        elif o < 0x20 or o == 0x7f or o > 0xff or ch == "{":
            out.append(f"\\x{o & 0xff:02x}")
        else:
            out.append(ch)
    return "".join(out)


class generator:
    """One dialogue's lines (.dlg syntax) from a seed."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seed = seed

    def pick(self, xs):
        return self.r.choice(xs)

    def address(self):
        if self.r.random() < 0.1:
            return self.pick(["", "<>", "postmaster", "<@>", "<a@b@c>", "<\\x01@x>"])
        u = self.pick(LOCAL)
        d = self.pick(DOMAINS)
        a = self.pick(TRICKS).format(u=u, d=d)
        return a if self.r.random() < 0.9 else a.upper()

    def plain(self, good):
        user = f"{USER}@{REALM}" if self.r.random() < 0.8 else self.pick([USER, "nobody@x"])
        pw = PASSWORD if good else self.pick(["wrong", "", PASSWORD + "x"])
        authz = "" if self.r.random() < 0.8 else self.pick([user, "other@example.com"])
        return base64.b64encode(f"{authz}\0{user}\0{pw}".encode()).decode()

    def command(self):
        """(text, is_data): one command line without its line end."""
        x = self.r.random()
        if x < 0.10:
            return self.pick(["EHLO", "HELO", "ehlo", "EHLO"]) + " " + self.pick(HELO_NAMES)
        if x < 0.25:
            sp = "" if self.r.random() < 0.9 else " "
            return f"MAIL FROM:{sp}<{self.address()}>" + self.pick(MAIL_PARAMS)
        if x < 0.45:
            sp = "" if self.r.random() < 0.9 else " "
            return f"RCPT TO:{sp}<{self.address()}>" + self.pick(RCPT_PARAMS)
        if x < 0.52:
            return "DATA"
        if x < 0.62:
            good = self.r.random() < 0.5
            m = self.r.random()
            if m < 0.5:
                return "AUTH PLAIN " + self.plain(good)
            if m < 0.7:
                return self.pick(["AUTH PLAIN", "AUTH LOGIN", "AUTH CRAM-MD5", "AUTH",
                                  "AUTH PLAIN =", "AUTH PLAIN !!!", "AUTH LOGIN " +
                                  base64.b64encode(USER.encode()).decode()])
            return self.pick(["*", "=", base64.b64encode(b"x").decode(), "not base64!"])
        if x < 0.70:
            return self.pick(["RSET", "NOOP", "NOOP x", "HELP", "QUIT"]) if self.r.random() < 0.97 \
                else "QUIT"
        if x < 0.78:
            return self.pick(["VRFY", "EXPN", "ETRN"]) + " " + self.pick(
                LOCAL + ["<alice@relay.example.com>", "@relay.example.com", "", "x@remote.example"])
        if x < 0.85:
            return self.pick(["XCLIENT NAME=unknown", "XCLIENT ADDR=203.0.113.7",
                              "XCLIENT ADDR=127.0.0.1", "XCLIENT LOGIN=alice", "XCLIENT FOO=1",
                              "XFORWARD NAME=x", "STARTTLS", "BDAT 0 LAST"])
        return self.pick(["", " ", "GET / HTTP/1.0", "CONNECT x", "mail from:<>", "MAIL",
                          "RCPT", "DATA x", "HELO", "EHLO", "\0", "\xe9", "X" * 600,
                          "MAIL FROM:<" + "a" * 300 + "@example.com>", "1234", "TURN"])

    def body(self):
        lines = []
        for _ in range(self.r.randrange(0, 5)):
            lines.append(self.pick(["Subject: test", "", "hello", ".leading dot", "..", ".",
                                    "x" * self.r.randrange(0, 1200), "Received: from x",
                                    "MAIL FROM:<smuggled@example.com>", "bare\ncr\rmixed"]))
        eod = self.pick(EODS) if self.r.random() < 0.2 else "\r\n.\r\n"
        text = "\r\n".join(lines) + eod
        if eod != "\r\n.\r\n":
            # A smuggling attempt: a second transaction, then the real end of data.
            text += "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@relay.example.com>\r\n" \
                    "DATA\r\nsmuggled\r\n.\r\n"
        return text

    def dialogue_text(self):
        listener = self.pick(["smtp", "submission"])
        client = self.pick(["inside", "outside"])
        out = [f"# diff_fuzz.py seed {self.seed}", f"title: differential fuzz seed {self.seed}",
               "config: fuzz", f"listener: {listener}", f"client: {client}"]
        if self.r.random() < 0.85:
            out.append(f"C: EHLO {self.pick(HELO_NAMES[:3])}")
        in_group = False
        for _ in range(self.r.randrange(1, 14)):
            cmd = self.command()
            end = self.pick(LINE_ENDS)
            if self.r.random() < 0.3:  # a pipelined group line
                if not in_group and out[-1].startswith(("P:", "R:")):
                    out.append("")  # a blank line ends the previous group
                out.append(f"R: {esc(cmd + end)}")
                in_group = True
            else:
                out.append(f"R: {esc(cmd + end)}")
                out.append("")
                in_group = False
            if cmd == "DATA":
                out.append(f"R: {esc(self.body())}")
                out.append("")
                in_group = False
            if cmd == "QUIT":
                break
        else:
            out.append("C: QUIT")
        return "\n".join(out) + "\n"


def play_text(text, inst, tmp):
    path = Path(tmp) / "dlg.dlg"
    path.write_text(text, encoding="latin-1")
    d = dl.parse(path)
    try:
        rec = dl.play(d, ic.LISTEN_HOST, inst.port(d.listener), reply_timeout_s=REPLY_TIMEOUT_S)
    except (OSError, dl.dialogue_error) as exc:
        return [f"S: [player error: {exc}]"]
    # Whether a write after the server closed fails (EPIPE, ECONNRESET) or goes unnoticed is a
    # race of the kernel's, not a reply of the server's.
    # Likewise whether the player saw the close before its next write ("[not sent]") or
    # after it: once the server has closed, only its replies before the close count.
    lines = [("S: [connection closed]" if l.startswith("S: [send failed:") else l)
             for l in dl.transcript(rec)]
    # So the trailing client lines and close markers are dropped on both sides alike.
    closing = ("S: [connection closed]", "S: [not sent: connection closed]")
    while lines and (not lines[-1].startswith("S") or lines[-1] in closing):
        lines.pop()
    return lines


def first_difference(left, right):
    """(Postfix line, relaylab line) where two transcripts first differ."""
    n = max(len(left), len(right))
    for i in range(n):
        a = left[i] if i < len(left) else "<missing>"
        b = right[i] if i < len(right) else "<missing>"
        if a != b:
            return a, b
    return "", ""


EXPECT_HEADER = """\
# Known differences between Postfix 3.7.11 and relaylab found by tests/oracle/diff_fuzz.py,
# one per line: seed, then the first differing line of Postfix and of relaylab (tab-separated).
# CTest oracle.diff_fuzz fails when another seed differs, a line changes, or a listed seed no
# longer differs. Fix the gap, add its dialogue to testdata/dialogues, then rewrite this file:
#   diff_fuzz.py --relaylab build/relaylab {args} --write-expect FILE
"""


def read_expect(path):
    out = {}
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].isdigit():
            raise ValueError(f"{path}:{n}: expected SEED<TAB>postfix line<TAB>relaylab line")
        out[int(parts[0])] = (parts[1], parts[2])
    return out


def write_expect(path, got, a):
    args = f"--seed {a.seed} --count {a.count}"
    lines = [f"{seed}\t{l}\t{r}" for seed, (l, r) in sorted(got.items())]
    path.write_text(EXPECT_HEADER.format(args=args) + "\n".join(lines) + ("\n" if lines else ""),
                    encoding="latin-1")


def compare_expect(expected, got, found, out_dir):
    texts = {seed: (text, left, right) for seed, text, left, right in found}
    new = sorted(set(got) - set(expected))
    fixed = sorted(set(expected) - set(got))
    changed = sorted(s for s in set(got) & set(expected) if got[s] != expected[s])
    print(f"known differences: {len(expected)}, found: {len(got)}, new: {len(new)}, "
          f"changed: {len(changed)}, no longer differing: {len(fixed)}")
    for seed in new + changed:
        text, left, right = texts[seed]
        table, _ = dl.side_by_side(left, right, "postfix", "relaylab")
        out = out_dir / f"fuzz-{seed}.dlg"
        out.write_text(text + "".join(f"# {row}\n" for row in table.splitlines()),
                       encoding="latin-1")
        kind = "new" if seed in new else "changed"
        print(f"{kind} difference at seed {seed} ({out}):\n  postfix:  {got[seed][0]}\n"
              f"  relaylab: {got[seed][1]}")
        if seed in changed:
            print(f"  listed:   {expected[seed][0]} | {expected[seed][1]}")
    for seed in fixed:
        print(f"seed {seed} no longer differs: remove it from the known differences")
    return 1 if new or changed or fixed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relaylab", required=True, help="relaylab binary")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1, help="first dialogue seed")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--out", default=".", help="where a differing dialogue is written")
    ap.add_argument("--print", type=int, metavar="SEED", help="print one dialogue and exit")
    ap.add_argument("--max-differences", type=int, default=1,
                    help="stop after this many differing dialogues (each is written)")
    ap.add_argument("--expect", metavar="FILE",
                    help="known differences (seed, Postfix line, relaylab line per line): "
                         "pass only when exactly these differ, each as listed")
    ap.add_argument("--write-expect", metavar="FILE",
                    help="write the differences found in --expect's format")
    a = ap.parse_args()
    if a.print is not None:
        sys.stdout.write(generator(a.print).dialogue_text())
        return 0
    if a.count < 1 or a.count > 10_000_000:
        ap.error("--count must be 1..10000000")
    if a.seconds <= 0 or a.seconds > 86400:
        ap.error("--seconds must be in (0, 86400]")
    jobs = max(1, min(a.jobs, 32))
    if a.expect or a.write_expect:
        a.max_differences = a.count  # every difference counts
    expected = {}
    if a.expect:
        try:
            expected = read_expect(Path(a.expect))
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    ic.install_signal_cleanup()
    started = time.monotonic()
    ran = 0
    found = []
    try:
        with postfix_instance(CONFIG) as pf, \
                relaylab_instance(CONFIG, binary=a.relaylab) as rl, \
                tempfile.TemporaryDirectory() as tmp:
            def one(seed):
                text = generator(seed).dialogue_text()
                wdir = Path(tmp) / str(seed)
                wdir.mkdir()
                left = play_text(text, pf, wdir)
                right = play_text(text, rl, wdir)
                return seed, text, left, right

            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                next_seed = a.seed
                pending = set()
                while len(found) < a.max_differences:
                    while (len(pending) < jobs * 2 and next_seed < a.seed + a.count and
                           time.monotonic() - started < a.seconds):
                        pending.add(pool.submit(one, next_seed))
                        next_seed += 1
                    if not pending:
                        break
                    done, pending = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for f in sorted(done, key=lambda f: f.result()[0]):
                        seed, text, left, right = f.result()
                        ran += 1
                        if left != right and len(found) < a.max_differences:
                            found.append((seed, text, left, right))
                for f in pending:
                    f.cancel()
    except ic.instance_error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    took = time.monotonic() - started
    print(f"dialogues {ran}, differences {len(found)}, seconds {took:.1f}, "
          f"{ran / took:.0f}/s")
    if a.expect or a.write_expect:
        got = {seed: first_difference(left, right) for seed, _t, left, right in found}
        if a.write_expect:
            write_expect(Path(a.write_expect), got, a)
            print(f"wrote {len(got)} differences to {a.write_expect}")
        if a.expect:
            return compare_expect(expected, got, found, Path(a.out))
        return 0
    for seed, text, left, right in found:
        table, first = dl.side_by_side(left, right, "postfix", "relaylab")
        out = Path(a.out) / f"fuzz-{seed}.dlg"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "".join(f"# {row}\n" for row in table.splitlines()),
                       encoding="latin-1")
        rows = table.splitlines()
        print(f"difference at seed {seed}: {out}")
        if a.max_differences == 1:
            print(table)
        elif first is not None:
            print("  " + rows[first + 2])
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
