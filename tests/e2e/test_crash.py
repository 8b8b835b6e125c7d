#!/usr/bin/python3
"""The crash test: a load of messages into `relaylab relay`, kill -9 at random moments (seeded),
restart on the same queue directory each time; at the end

  1. every message that got a 250 was delivered at least once (the sink records each
     message's X-E2E-Seq header), through the queue ID that the 250 named;
  2. no recipient was delivered again after its done mark: the maillog's "status=sent ...
     queued as SNNNNNN" lines name the sink delivery that completed each recipient (the relay
     logs them only once the mark is durable); no later sink delivery of the same message may
     exist, and no recipient has two such lines.

    test_crash.py --relaylab BIN [--seed N] [--messages N] [--kills N] [--deadline-s S]
"""

import argparse
import random
import re
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e_lib as e2e  # noqa: E402

SENT_RE = re.compile(r"postfix/smtp\[\d+\]: ([0-9A-F]+): to=<([^>]+)>, .*status=sent "
                     r"\(250 2\.0\.0 Ok: queued as S(\d+)\)")
SEQ_RE = re.compile(rb"\r\nX-E2E-Seq: (\d+)\r\n")
RECEIVED_ID_RE = re.compile(rb"with ESMTP id ([0-9A-F]+)")


class load:
    """Senders on a few connections; each message is tried once, its outcome recorded."""

    def __init__(self, messages, threads, body_bytes):
        self.total = messages
        self.next = 0
        self.lock = threading.Lock()
        self.acked = {}  # seq -> queue ID
        self.failed = 0
        self.threads = threads
        self.line = ("x" * 70 + "\r\n")
        self.body = self.line * max(1, body_bytes // len(self.line))
        self.port = None  # set by the test; a relay restart keeps its port

    def take(self):
        with self.lock:
            if self.next >= self.total:
                return None
            self.next += 1
            return self.next

    def message(self, seq):
        return (f"From: load@example.org\r\nTo: sink@remote.example\r\nSubject: load {seq}\r\n"
                f"Message-ID: <{seq}.e2e@client.example>\r\nX-E2E-Seq: {seq}\r\n\r\n"
                f".leading dot {seq}\r\n" + self.body)

    def worker(self, deadline):
        conn = None
        seq = self.take()
        while seq is not None and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, local_hostname="load.example.net",
                                        timeout=10)
                    conn.ehlo()
                conn.mail("load@example.org")
                code, _ = conn.rcpt("sink@remote.example")
                if code != 250:
                    raise smtplib.SMTPException(f"RCPT {code}")
                code, msg = conn.data(self.message(seq))
                if code == 250:
                    m = e2e.QUEUED_RE.search(msg.decode(errors="replace"))
                    with self.lock:
                        self.acked[seq] = m.group(1) if m else ""
                else:
                    with self.lock:
                        self.failed += 1
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.failed += 1
                try:
                    if conn is not None:
                        conn.close()
                except OSError:
                    pass
                conn = None
                time.sleep(0.05)  # the relay is restarting
            seq = self.take()
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--relaylab", required=True)
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--body-bytes", type=int, default=1024)
    ap.add_argument("--deadline-s", type=float, default=150)
    a = ap.parse_args()
    start = time.monotonic()
    deadline = start + a.deadline_s
    rng = random.Random(a.seed)
    print(f"crash test: seed={a.seed} messages={a.messages} kills={a.kills} "
          f"threads={a.threads} body_bytes={a.body_bytes}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="relaylab-e2e-crash."))
    problems = []
    sink = e2e.py_sink(tmp / "sink", deadline_s=a.deadline_s + 10)
    relay = e2e.relay(a.relaylab, tmp / "relay", sink.port)
    kills_done = 0
    try:
        relay.start()
        work = load(a.messages, a.threads, a.body_bytes)
        work.port = relay.port
        senders = [threading.Thread(target=work.worker, args=(deadline - 40,), daemon=True)
                   for _ in range(a.threads)]
        for t in senders:
            t.start()
        # Kill at random moments while the load runs (and a last one after it, while the
        # queue manager is still draining).
        for k in range(a.kills):
            time.sleep(rng.uniform(0.3, 2.0))
            if time.monotonic() > deadline - 50:
                break
            relay.kill()
            kills_done += 1
            time.sleep(rng.uniform(0.0, 0.3))
            relay.start()
        for t in senders:
            t.join(timeout=max(1.0, deadline - 40 - time.monotonic()))
        e2e.check(not any(t.is_alive() for t in senders), problems, "senders did not finish")
        drained = relay.wait_queue_empty(max(5.0, deadline - 10 - time.monotonic()))
        e2e.check(drained, problems, f"queue not empty at the end: {relay.queue_files()} files")
        relay.stop()
        time.sleep(0.5)  # the sink finishes writing what it acknowledged
        deliveries = sink.messages()
    finally:
        relay.kill()
        sink.stop()

    # seq -> [(sink number, queue ID named by the relay's Received: header)]
    by_seq = {}
    for number, meta, data in deliveries:
        m = SEQ_RE.search(data)
        if not m:
            problems.append(f"sink message {number} has no X-E2E-Seq")
            continue
        qid = RECEIVED_ID_RE.search(data)
        by_seq.setdefault(int(m.group(1)), []).append(
            (number, qid.group(1).decode() if qid else ""))
    number_to_seq = {n: s for s, lst in by_seq.items() for n, _ in lst}

    missing = [s for s in work.acked if s not in by_seq]
    e2e.check(not missing, problems,
              f"{len(missing)} acknowledged messages never delivered: {missing[:10]}")
    wrong_id = [s for s, qid in work.acked.items()
                if s in by_seq and qid and all(q != qid for _, q in by_seq[s])]
    e2e.check(not wrong_id, problems, f"delivered under another queue ID: {wrong_id[:10]}")

    logged = {}  # (qid, rcpt) -> [sink numbers]
    for line in relay.log_lines():
        m = SENT_RE.search(line)
        if m:
            logged.setdefault((m.group(1), m.group(2)), []).append(int(m.group(3)))
    twice = {k: v for k, v in logged.items() if len(v) > 1}
    e2e.check(not twice, problems, f"recipients logged as sent twice: {list(twice.items())[:5]}")
    after_done = []
    for (qid, rcpt), numbers in logged.items():
        done_at = min(numbers)
        seq = number_to_seq.get(done_at)
        if seq is None:
            problems.append(f"{qid}: logged sink delivery S{done_at:06d} does not exist")
            continue
        later = [n for n, _ in by_seq[seq] if n > done_at]
        if later:
            after_done.append((qid, rcpt, done_at, later))
    e2e.check(not after_done, problems,
              f"delivered again after the done mark: {after_done[:5]}")

    redelivered = sum(len(v) - 1 for v in by_seq.values())
    unacked_delivered = sum(1 for s in by_seq if s not in work.acked)
    restarts = relay.starts
    print(f"crash test: sent={work.total} acked={len(work.acked)} not_acked={work.failed} "
          f"kills={kills_done} starts={restarts} sink_deliveries={len(deliveries)} "
          f"unique_delivered={len(by_seq)} redelivered_before_done_mark={redelivered} "
          f"delivered_without_250={unacked_delivered} logged_sent={len(logged)} "
          f"missing={len(missing)} after_done_mark={len(after_done)} "
          f"elapsed_s={time.monotonic() - start:.1f}", flush=True)
    e2e.check(kills_done >= min(a.kills, 3), problems, f"only {kills_done} kills happened")
    e2e.check(len(work.acked) >= a.messages // 2, problems,
              f"only {len(work.acked)} of {a.messages} messages were accepted")
    rc = e2e.finish("e2e crash", problems)
    if rc == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  (kept {tmp})")
    return rc


if __name__ == "__main__":
    e2e.main_guard(main)
