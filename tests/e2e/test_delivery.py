#!/usr/bin/python3
"""End to end: `relaylab relay` (relayhost=[127.0.0.1]:PORT) delivers to a real sink.

    test_delivery.py --relaylab BIN (aiosmtpd|smtp-sink|bounce-local|storage)

aiosmtpd: the delivered bytes are the sent message plus the relay's Received: header, with
dot-stuffed lines surviving the round trip; the maillog shows qmgr/smtp lines as Postfix does.
smtp-sink: Postfix's own sink receives the same message.
bounce-local: a 550 at the sink bounces: the RFC 3464 notification from <> reaches the sender
through the relayhost; a mydestination recipient lands in an mbox under mail_spool_directory.
storage: queue_minfree beyond the free space gives "452 4.3.1 Insufficient system storage".
"""

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e_lib as e2e  # noqa: E402

BODY = ("line one\r\n"
        ".a line that starts with a dot\r\n"
        "..two dots\r\n"
        ".\r\n"
        "From the start of a line\r\n"
        "last line\r\n")


def message(tag):
    return (f"From: Sender <sender@example.org>\r\nTo: rcpt@remote.example\r\n"
            f"Subject: e2e {tag}\r\nMessage-ID: <{tag}@client.example>\r\n\r\n" + BODY)


def wait_for(cond, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def check_received(data, qid, problems):
    text = data.decode(errors="replace")
    e2e.check(re.search(r"^Received: from client\.example\.net \(localhost \[127\.0\.0\.1\]\)\r\n"
                        r"\tby relay\.example\.com \(Postfix\) with ESMTP id " + qid + r"\b",
                        text, re.M) is not None,
              problems, f"no Received: header with id {qid}:\n{text[:600]}")


def case_aiosmtpd(binary, tmp, problems):
    sink = e2e.py_sink(tmp / "sink", deadline_s=100)
    r = e2e.relay(binary, tmp / "relay", sink.port)
    try:
        r.start()
        msg = message("aiosmtpd")
        qid = e2e.send(r.port, "sender@example.org", ["rcpt@remote.example"], msg)
        e2e.check(qid != "", problems, "no queue ID in the 250 reply")
        e2e.check(wait_for(lambda: len(sink.messages()) >= 1 and r.queue_files() == 0
                           and r.removed_lines() >= 1, 30),
                  problems, "message not delivered within 30 s")
        got = sink.messages()
        e2e.check(len(got) == 1, problems, f"{len(got)} deliveries, expected 1")
        if got:
            _, meta, data = got[0]
            e2e.check(meta["mail_from"] == "sender@example.org", problems, f"MAIL FROM {meta}")
            e2e.check(meta["rcpt_tos"] == ["rcpt@remote.example"], problems, f"RCPT {meta}")
            check_received(data, qid, problems)
            # Everything after the Received: header is the message as sent, byte for byte
            # (dot-stuffing undone by the sink exactly as the relay applied it).
            e2e.check(data.endswith(msg.encode()), problems,
                      "delivered bytes differ from the sent message:\n" + data.decode()[-400:])
        logs = "\n".join(r.log_lines())
        for pattern in [
                rf"postfix/qmgr\[\d+\]: {qid}: from=<sender@example\.org>, size=\d+, nrcpt=1 "
                r"\(queue active\)",
                rf"postfix/smtp\[\d+\]: {qid}: to=<rcpt@remote\.example>, "
                rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{sink.port}, delay=[0-9.]+, "
                r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent "
                r"\(250 2\.0\.0 Ok: queued as S000001\)",
                rf"postfix/qmgr\[\d+\]: {qid}: removed"]:
            e2e.check(re.search(pattern, logs) is not None, problems,
                      f"maillog lacks /{pattern}/:\n{logs[-1500:]}")
        # size= is the content size with CRLF line ends, as Postfix logs it.
        m = re.search(rf"{qid}: from=<[^>]*>, size=(\d+)", logs)
        if m and got:
            e2e.check(int(m.group(1)) == len(got[0][2]), problems,
                      f"size={m.group(1)} but the content has {len(got[0][2])} bytes")
        r.stop()
    finally:
        r.kill()
        sink.stop()


def case_smtp_sink(binary, tmp, problems):
    sink = e2e.smtp_sink(tmp / "dump")
    r = e2e.relay(binary, tmp / "relay", sink.port)
    try:
        r.start()
        msg = message("smtp-sink")
        qid = e2e.send(r.port, "sender@example.org", ["rcpt@remote.example"], msg)
        e2e.check(wait_for(lambda: r.queue_files() == 0 and len(sink.dumps()) >= 1
                           and r.removed_lines() >= 1, 30),
                  problems, "message not delivered to smtp-sink within 30 s")
        dumps = sink.dumps()
        e2e.check(len(dumps) == 1, problems, f"{len(dumps)} smtp-sink dumps, expected 1")
        if dumps:
            d = dumps[0].replace(b"\r\n", b"\n")
            check_received(dumps[0].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), qid,
                           problems)
            e2e.check(msg.replace("\r\n", "\n").encode() in d, problems,
                      "smtp-sink dump lacks the message:\n" + d.decode(errors="replace")[-600:])
        logs = "\n".join(r.log_lines())
        e2e.check(re.search(rf"{qid}: to=<rcpt@remote\.example>, .*status=sent", logs) is not None,
                  problems, "no status=sent line:\n" + logs[-1500:])
        r.stop()
    finally:
        r.kill()
        sink.stop()


def case_bounce_local(binary, tmp, problems):
    sink = e2e.py_sink(tmp / "sink", deadline_s=100)
    r = e2e.relay(binary, tmp / "relay", sink.port)
    try:
        r.start()
        msg = message("bounce")
        qid = e2e.send(r.port, "sender@example.org",
                       ["bad@remote.example", "good@remote.example", "nobody@localhost"], msg)
        e2e.check(wait_for(lambda: r.queue_files() == 0 and len(sink.messages()) >= 2
                           and r.removed_lines() >= 2, 30),
                  problems, "mail not delivered/bounced within 30 s")
        got = sink.messages()
        bounces = [m for m in got if m[1]["mail_from"] in ("", "<>")]  # aiosmtpd keeps "<>"
        e2e.check(len(bounces) == 1, problems, f"{len(bounces)} notifications, expected 1")
        if bounces:
            _, meta, data = bounces[0]
            text = data.decode(errors="replace")
            e2e.check(meta["rcpt_tos"] == ["sender@example.org"], problems, f"bounce to {meta}")
            for needle in [
                    "From: Mail Delivery System <MAILER-DAEMON@relay.example.com>\r\n",
                    "Content-Type: multipart/report; report-type=delivery-status;\r\n",
                    "This is the mail system at host relay.example.com.\r\n",
                    f"X-Postfix-Queue-ID: {qid}\r\n",
                    "Final-Recipient: rfc822; bad@remote.example\r\n",
                    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; 127.0.0.1\r\n",
                    "Diagnostic-Code: smtp; 550 5.1.1 <bad@remote.example>: Recipient address\r\n",
                    "Content-Type: message/rfc822\r\n",
                    "Subject: e2e bounce\r\n"]:
                e2e.check(needle in text, problems, f"notification lacks {needle!r}:\n{text[:3000]}")
            e2e.check("good@remote.example" not in text.split("Content-Type: message/rfc822")[0]
                      .split("Content-Type: message/delivery-status")[1], problems,
                      "the delivered recipient is in the report")
        mbox = tmp / "relay" / "mail" / "nobody"
        e2e.check(mbox.exists(), problems, "no mbox for nobody@localhost")
        if mbox.exists():
            text = mbox.read_text(errors="replace")
            e2e.check(text.startswith("From sender@example.org  "), problems,
                      "mbox From_ line: " + text[:80])
            e2e.check("\nDelivered-To: nobody@localhost\n" in text and
                      "\n>From the start of a line\n" in text, problems, "mbox content:\n" + text)
        logs = "\n".join(r.log_lines())
        for pattern in [rf"postfix/bounce\[\d+\]: {qid}: sender non-delivery notification: "
                        r"[0-9A-F]+",
                        rf"postfix/local\[\d+\]: {qid}: to=<nobody@localhost>, relay=local, .*"
                        r"dsn=2\.0\.0, status=sent \(delivered to mailbox\)",
                        rf"{qid}: to=<bad@remote\.example>, .*dsn=5\.1\.1, status=bounced",
                        rf"postfix/qmgr\[\d+\]: {qid}: removed"]:
            e2e.check(re.search(pattern, logs) is not None, problems,
                      f"maillog lacks /{pattern}/:\n{logs[-2000:]}")
        r.stop()
    finally:
        r.kill()
        sink.stop()


def case_storage(binary, tmp, problems):
    sink = e2e.py_sink(tmp / "sink", deadline_s=60)
    r = e2e.relay(binary, tmp / "relay", sink.port,
                  extra_main={"queue_minfree": str(2**62)})
    try:
        r.start()
        import smtplib
        with smtplib.SMTP("127.0.0.1", r.port, local_hostname="client.example.net",
                          timeout=20) as s:
            s.ehlo()
            code, text = s.mail("sender@example.org")
            e2e.check((code, text) == (452, b"4.3.1 Insufficient system storage"), problems,
                      f"MAIL FROM with a full disk: {code} {text!r}")
        e2e.check(r.queue_files() == 0, problems, "something was queued")
        r.stop()
    finally:
        r.kill()
        sink.stop()


def run_cli(binary, *args):
    import subprocess
    p = subprocess.run([binary, "queue", *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def case_queue(binary, tmp, problems):
    """relaylab queue list|flush|delete|requeue against a relay whose relayhost is down."""
    sink_port = e2e.free_port()
    r = e2e.relay(binary, tmp / "relay", sink_port,
                  extra_main={"minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s",
                              "queue_run_delay": "3600s"})
    qdir = str(tmp / "relay" / "queue")
    sink = None
    try:
        r.start()
        qid = e2e.send(r.port, "sender@example.org", ["rcpt@remote.example"], message("queue"))
        e2e.check(wait_for(lambda: (tmp / "relay" / "queue" / "deferred" / qid).exists(), 20),
                  problems, "message not deferred")
        rc, out = run_cli(binary, "list", "--queue-dir", qdir)
        e2e.check(rc == 0 and re.search(
            rf"^{qid} +\d+ \w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d  sender@example\.org\n"
            rf" +\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:{sink_port}: Connection refused\)\n"
            r" +rcpt@remote\.example\n", out, re.M) is not None, problems,
            f"queue list ({rc}):\n{out}")
        e2e.check("-- 1 Kbytes in 1 Request." in out or "-- 0 Kbytes in 1 Request." in out,
                  problems, "mailq summary:\n" + out)
        sink = e2e.py_sink(tmp / "sink", deadline_s=50, port=sink_port)
        rc, out = run_cli(binary, "flush", "--config-dir", str(tmp / "relay" / "etc"))
        e2e.check(rc == 0, problems, f"queue flush: {rc} {out}")
        e2e.check(wait_for(lambda: r.queue_files() == 0 and len(sink.messages()) == 1
                           and r.removed_lines() >= 1, 20),
                  problems, "flush did not deliver the deferred message")
        rc, out = run_cli(binary, "list", "--queue-dir", qdir)
        e2e.check(rc == 0 and out == "Mail queue is empty\n", problems, f"list: {out!r}")
        # delete and requeue refuse while the relay runs; flush needs it.
        sink.stop()
        qid2 = e2e.send(r.port, "sender@example.org", ["rcpt@remote.example"], message("q2"))
        e2e.check(wait_for(lambda: (tmp / "relay" / "queue" / "deferred" / qid2).exists(), 20),
                  problems, "second message not deferred")
        rc, out = run_cli(binary, "delete", qid2, "--queue-dir", qdir)
        e2e.check(rc == 1 and "stop it first" in out, problems, f"delete while running: {out}")
        r.stop()
        rc, out = run_cli(binary, "flush", "--queue-dir", qdir)
        e2e.check(rc == 1 and "Cannot flush mail queue - mail system is down" in out, problems,
                  f"flush without relay: {rc} {out}")
        rc, out = run_cli(binary, "requeue", qid2, "--queue-dir", qdir)
        e2e.check(rc == 0 and f"{qid2}: requeued" in out, problems, f"requeue: {out}")
        e2e.check((tmp / "relay" / "queue" / "incoming" / qid2).exists(), problems,
                  "requeue did not move the message to incoming/")
        rc, out = run_cli(binary, "delete", qid2, "--queue-dir", qdir)
        e2e.check(rc == 0 and f"{qid2}: removed" in out and "Deleted: 1 message" in out,
                  problems, f"delete: {out}")
        rc, out = run_cli(binary, "delete", qid2, "--queue-dir", qdir)
        e2e.check(rc == 1 and "no such message" in out, problems, f"delete again: {out}")
        rc, out = run_cli(binary, "list", "--queue-dir", qdir)
        e2e.check(out == "Mail queue is empty\n", problems, f"list at the end: {out!r}")
    finally:
        r.kill()
        if sink:
            sink.stop()


CASES = {"queue": case_queue, "aiosmtpd": case_aiosmtpd, "smtp-sink": case_smtp_sink,
         "bounce-local": case_bounce_local, "storage": case_storage}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--relaylab", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=f"relaylab-e2e-{a.case}."))
    problems = []
    try:
        CASES[a.case](a.relaylab, tmp, problems)
    finally:
        rc = e2e.finish(f"e2e {a.case}", problems)
        if rc == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"  (kept {tmp})")
    return rc


if __name__ == "__main__":
    e2e.main_guard(main)
