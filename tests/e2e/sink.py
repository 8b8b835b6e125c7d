#!/usr/bin/python3
"""A recording SMTP sink for the end-to-end tests (aiosmtpd, Debian's python3-aiosmtpd).

Every accepted message is saved as DIR/NNNNNN.eml (the bytes as received, CRLF line ends,
dot-unstuffed) with DIR/NNNNNN.json (mail_from, rcpt_tos). Recipients whose local part starts
with "bad" get "550 5.1.1 <addr>: Recipient address rejected: User unknown"; with "soft" a
"450 4.2.0 <addr>: Recipient address rejected: try again later". Prints "ready PORT" once
listening; stops after --deadline-s seconds or on SIGTERM.
"""
import argparse
import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bad"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("soft"):
            return f"450 4.2.0 <{address}>: Recipient address rejected: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, "%06d" % self.count)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as S%06d" % self.count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--deadline-s", type=float, default=170)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    handler = Recorder(a.dir)
    controller = Controller(handler, hostname="127.0.0.1", port=a.port,
                            server_hostname="sink.example", decode_data=False,
                            data_size_limit=0)
    controller.start()
    print("ready", a.port, flush=True)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("flag", True))
    end = time.monotonic() + a.deadline_s
    while not stop["flag"] and time.monotonic() < end:
        time.sleep(0.1)
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
