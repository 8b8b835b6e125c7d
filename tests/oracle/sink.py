"""A tiny SMTP sink for the relayhost side: accepts everything, writes one JSON file per message.

Usage: sink.py --port PORT --dir DIR. Standard library only. Each accepted message becomes
DIR/msg-<n>.json with mail_from, rcpt_to and data (the de-dot-stuffed body, decoded latin-1 so
every byte survives). Loopback only.
"""

import argparse
import itertools
import json
import os
import socketserver
import threading

LINE_BYTES_MAX = 1 << 20
MESSAGE_BYTES_MAX = 64 << 20
COMMANDS_MAX = 100000
IDLE_TIMEOUT_S = 120

_counter = itertools.count(1)
_lock = threading.Lock()


class handler(socketserver.StreamRequestHandler):
    timeout = IDLE_TIMEOUT_S

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 sink.example ESMTP relaylab-sink")
        mail_from, rcpts = None, []
        for _ in range(COMMANDS_MAX):
            line = self.rfile.readline(LINE_BYTES_MAX)
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb == "HELO":
                self.reply("250 sink.example")
            elif verb == "MAIL":
                mail_from, rcpts = cmd[5:].strip(), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(cmd[5:].strip())
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                body, size = [], 0
                while True:
                    l = self.rfile.readline(LINE_BYTES_MAX)
                    if not l:
                        return
                    if l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    size += len(l)
                    if size <= MESSAGE_BYTES_MAX:
                        body.append(l)
                n = next(_counter)
                with _lock:
                    tmp = os.path.join(self.server.directory, f".msg-{n:06d}.tmp")
                    with open(tmp, "w") as f:
                        json.dump({"mail_from": mail_from, "rcpt_to": rcpts,
                                   "data": b"".join(body).decode("latin-1")}, f)
                    os.rename(tmp, os.path.join(self.server.directory, f"msg-{n:06d}.json"))
                self.reply(f"250 2.0.0 Ok: sink message {n}")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("250 2.0.0 Ok")


class server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    with server(("127.0.0.1", a.port), handler) as srv:
        srv.directory = a.dir
        srv.serve_forever()


if __name__ == "__main__":
    main()
