"""SMTP dialogue files (testdata/dialogues/*.dlg): parse, play against a server, record.

A dialogue reads as a transcript. Header lines first, then client lines and optional patterns:

    # comment
    title: outside client, good password, remote recipient
    config: seed                 # testdata/configs/<name>
    listener: submission         # smtp | submission
    client: outside              # inside (loopback, in mynetworks) | outside (XCLIENT first)
    C: EHLO client.example.net   # one write: the text + CRLF
    S: 250*                      # the reply to it matches ('*' = any text, even across the
                                 #   lines of a multi-line reply; all else is literal)
    P: MAIL FROM:<a@b.example>   # consecutive P:/R: lines go out in ONE write (pipelining);
    P: RCPT TO:<c@d.example>     #   P: appends CRLF,
    R: DATA\r\n                  #   R: sends the bytes as written (no CRLF added)
    P*10000: NOOP                # repeat a line N times (N <= 100000)
    S*2: 250*                    # N replies matching the same glob
    data-end: crlf               # optional: the server ends DATA only at <CR><LF>.<CR><LF>
                                 #   (smtpd_forbid_bare_newline = normalize/reject); default
                                 #   lf: any "." line ends it, as Postfix's default "no" reads
    T:                           # the client starts TLS here (after the 220 to STARTTLS):
                                 #   Python's ssl, trusting testdata/tls/ca.crt and checking
                                 #   the name relay.example.com; the result is recorded as
                                 #   "[TLS TLSv1.3]" or "[TLS failed: reason]"

Escapes in C/P/R text: \\r \\n \\t \\0 \\xHH \\\\ and {{c*N}} (the text c repeated N times,
N <= 1000000). `client: outside` makes the player send `XCLIENT ADDR=203.0.113.9 NAME=unknown`
right after the greeting; its reply is recorded and compared like any other. `listener: smtps`
starts TLS before the greeting (wrapper mode). TLS bytes are never compared, only the replies
and the negotiated protocol version.

The player knows how many replies each write must produce: one per complete command line (LF
ends a line, as Postfix reads it), none for message content after a 354 reply up to the "."
line. A missing reply is recorded as `[no reply within Ns]`; a closed connection as
`[connection closed]`. Standard library only.
"""

import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

OUTSIDE_ADDR = "203.0.113.9"
XCLIENT_OUTSIDE = f"XCLIENT ADDR={OUTSIDE_ADDR} NAME=unknown"
REPLY_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 0.3
CONNECT_TIMEOUT_S = 5.0
REPEAT_MAX = 100000
MACRO_REPEAT_MAX = 1000000
REPLY_LINES_MAX = 1000
REPLIES_PER_DIALOGUE_MAX = 200000
READ_BYTES_MAX = 64 << 20
DIALOGUE_TIMEOUT_S = 120.0

HEADER_KEYS = {"title", "config", "listener", "client", "note", "data-end"}
DATA_ENDS = {"lf", "crlf"}
LISTENERS = {"smtp", "submission", "smtps", "authonly"}
TLS_CA = Path(__file__).resolve().parents[2] / "testdata" / "tls" / "ca.crt"
TLS_SERVER_NAME = "relay.example.com"
CLIENTS = {"inside", "outside"}


class dialogue_error(ValueError):
    """A malformed dialogue file (the message names file:line)."""


@dataclass
class step:
    """One write of the client, and the reply patterns that follow it in the file."""
    data: bytes
    shown: list  # the client lines as written in the file, for transcripts
    patterns: list = field(default_factory=list)
    line: int = 0
    tls: bool = False  # a T: line: start TLS instead of sending


@dataclass
class dialogue:
    path: Path
    headers: dict
    steps: list

    @property
    def name(self):
        return self.path.stem

    @property
    def config(self):
        return self.headers["config"]

    @property
    def listener(self):
        return self.headers["listener"]

    @property
    def client(self):
        return self.headers["client"]


_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)|\{\{(.*?)\*(\d+)\}\}")
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text, where=""):
    """Dialogue text to bytes (latin-1), expanding escapes and {{c*N}}.

    Raises dialogue_error on an unknown escape or a repeat count over MACRO_REPEAT_MAX.
    """
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("latin-1")
        pos = m.end()
        e = m.group(1)
        if e is None:
            n = int(m.group(3))
            if n > MACRO_REPEAT_MAX:
                raise dialogue_error(f"{where}: repeat {n} > {MACRO_REPEAT_MAX}")
            out += unescape(m.group(2), where) * n
        elif e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e]
        elif e.startswith("x") and len(e) == 3:
            out += bytes([int(e[1:], 16)])
        else:
            raise dialogue_error(f"{where}: unknown escape \\{e} in {text!r}")
    out += text[pos:].encode("latin-1")
    return bytes(out)


_LINE = re.compile(r"^([CPRST])(?:\*(\d+))?:(?: (.*)|)$")


def parse(path):
    """Reads a .dlg file. Raises dialogue_error naming file:line on any mistake."""
    path = Path(path)
    headers, steps = {}, []
    pending = None  # the P:/R: group being collected
    for lineno, raw in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        where = f"{path}:{lineno}"
        if not raw.strip() or raw.startswith("#"):
            pending = None
            continue
        m = _LINE.match(raw)
        if not m:
            hm = re.match(r"^([a-z-]+):\s*(.*?)\s*$", raw)
            if not hm or steps:
                raise dialogue_error(f"{where}: expected C:/P:/R:/S: or a header, got {raw!r}")
            key, value = hm.group(1), hm.group(2)
            if key not in HEADER_KEYS:
                raise dialogue_error(f"{where}: unknown header {key!r}")
            headers[key] = value
            continue
        kind, count, text = m.group(1), int(m.group(2) or 1), m.group(3) or ""
        if count < 1 or count > REPEAT_MAX:
            raise dialogue_error(f"{where}: repeat count {count} outside 1..{REPEAT_MAX}")
        if kind == "S":
            if not steps:
                raise dialogue_error(f"{where}: S: before any client line")
            steps[-1].patterns += [text] * count
            pending = None
            continue
        if kind == "T":
            if count != 1 or text:
                raise dialogue_error(f"{where}: T: takes no count and no text")
            steps.append(step(data=b"", shown=["T:"], line=lineno, tls=True))
            pending = None
            continue
        if kind == "C" and count != 1:
            raise dialogue_error(f"{where}: C: takes no repeat count (use P*N:)")
        data = unescape(text, where) + (b"\r\n" if kind in "CP" else b"")
        shown = [f"{kind}{'*' + str(count) if count > 1 else ''}: {text}"]
        if kind == "C" or pending is None or steps[-1].patterns:
            steps.append(step(data=data * count, shown=shown, line=lineno))
            pending = None if kind == "C" else steps[-1]
        else:
            pending.data += data * count
            pending.shown += shown
    for key in ("config", "listener", "client"):
        if key not in headers:
            raise dialogue_error(f"{path}: missing header {key}:")
    if headers["listener"] not in LISTENERS:
        raise dialogue_error(f"{path}: listener must be one of {sorted(LISTENERS)}")
    if headers["client"] not in CLIENTS:
        raise dialogue_error(f"{path}: client must be one of {sorted(CLIENTS)}")
    if headers.setdefault("data-end", "lf") not in DATA_ENDS:
        raise dialogue_error(f"{path}: data-end must be one of {sorted(DATA_ENDS)}")
    return dialogue(path=path, headers=headers, steps=steps)


class _reader:
    """Reply reader over a socket with a per-reply deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False
        self.total = 0

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.total += len(data)
        if self.total > READ_BYTES_MAX:
            raise dialogue_error(f"server sent more than {READ_BYTES_MAX} bytes")
        self.buf += data
        return True

    def reply(self, timeout_s):
        """One reply as a list of lines (without CRLF), or a one-item marker list."""
        deadline = time.monotonic() + timeout_s
        lines = []
        while len(lines) < REPLY_LINES_MAX:
            while b"\n" not in self.buf:
                if self.closed or not self._fill(deadline):
                    if self.buf and self.closed:
                        lines.append("[partial] " + self.buf.decode("latin-1"))
                        self.buf = b""
                    if lines:
                        return lines + ["[reply incomplete]"]
                    return ["[connection closed]" if self.closed
                            else f"[no reply within {timeout_s:g}s]"]
            raw, self.buf = self.buf.split(b"\n", 1)
            line = raw.decode("latin-1")
            if line.endswith("\r"):
                line = line[:-1]
            else:
                line += "[bare LF]"
            lines.append(line)
            if not (len(line) >= 4 and line[:3].isdigit() and line[3] == "-"):
                return lines
        return lines + ["[too many reply lines]"]

    def drain(self, timeout_s):
        """Anything the server sends within timeout_s (unexpected extra output)."""
        deadline = time.monotonic() + timeout_s
        while not self.closed and self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data.decode("latin-1")


def _code(reply):
    return reply[-1][:3] if reply and reply[-1][:3].isdigit() else ""


def _tls_context():
    ctx = ssl.create_default_context(cafile=str(TLS_CA))
    ctx.check_hostname = True
    return ctx


def _start_tls(sock, rd, timeout_s):
    """Wraps sock in TLS. Returns (socket, marker reply)."""
    if rd.buf:
        return sock, [f"[plaintext before TLS] {rd.buf.decode('latin-1')!r}"]
    try:
        sock.settimeout(timeout_s)
        tls = _tls_context().wrap_socket(sock, server_hostname=TLS_SERVER_NAME)
    except (ssl.SSLError, OSError) as exc:
        rd.closed = True
        return sock, [f"[TLS failed: {getattr(exc, 'reason', None) or exc}]"]
    rd.sock = tls
    return tls, [f"[TLS {tls.version()}]"]


def play(dlg, host, port, reply_timeout_s=REPLY_TIMEOUT_S):
    """Plays dlg against host:port. Returns a list of (step_index, client_shown, [replies])
    where step 0 is the greeting (and XCLIENT for outside clients). Never raises on server
    behaviour: timeouts and closes are recorded as markers.
    """
    started = time.monotonic()
    record = []
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    try:
        rd = _reader(sock)
        if dlg.listener == "smtps":
            sock, marker = _start_tls(sock, rd, reply_timeout_s)
            record.append((None, ["T:"], [marker]))
        record.append((None, [], [rd.reply(reply_timeout_s)]))
        writes = []
        if dlg.client == "outside":
            writes.append((None, step(data=XCLIENT_OUTSIDE.encode() + b"\r\n",
                                      shown=[f"C: {XCLIENT_OUTSIDE}"])))
        writes += list(enumerate(dlg.steps))
        in_data = False
        strict_end = dlg.headers.get("data-end") == "crlf"
        prev_crlf = True  # the previous content line ended in CRLF (strict_end only)
        partial = b""
        replies_total = 0
        for index, st in writes:
            replies = []
            if rd.closed:
                record.append((index, st.shown, [["[not sent: connection closed]"]]))
                continue
            if st.tls:
                sock, marker = _start_tls(sock, rd, reply_timeout_s)
                record.append((index, st.shown, [marker]))
                continue
            try:
                sock.sendall(st.data)
            except OSError as exc:
                record.append((index, st.shown, [[f"[send failed: {exc.strerror}]"]]))
                rd.closed = True
                continue
            chunk = partial + st.data
            lines = chunk.split(b"\n")
            partial = lines.pop()  # bytes after the last LF wait for a later write
            for line in lines:
                crlf = line.endswith(b"\r")
                text = line[:-1] if crlf else line
                if in_data:
                    ends = text == b"." and (not strict_end or (crlf and prev_crlf))
                    prev_crlf = crlf
                    if not ends:
                        continue
                    in_data = False
                if time.monotonic() - started > DIALOGUE_TIMEOUT_S:
                    replies.append([f"[dialogue exceeded {DIALOGUE_TIMEOUT_S:g}s]"])
                    rd.closed = True
                    break
                r = rd.reply(reply_timeout_s)
                replies.append(r)
                replies_total += 1
                if r[0].startswith("["):
                    break
                if text.strip().upper() == b"DATA" and _code(r) == "354":
                    in_data = True
                    prev_crlf = True
                if text.strip().upper() == b"STARTTLS" and _code(r) == "220":
                    break  # what followed in this write is plaintext the server discards
                if replies_total > REPLIES_PER_DIALOGUE_MAX:
                    raise dialogue_error(f"more than {REPLIES_PER_DIALOGUE_MAX} replies")
            record.append((index, st.shown, replies))
            if replies and replies[-1][0].startswith("[no reply"):
                break  # out of step with the server: stop rather than misattribute replies
        if not rd.closed:
            last = record[-1][2][-1] if record[-1][2] else []
            if last and _code(last) == "221":
                rest = rd.drain(reply_timeout_s)
                record.append((None, [], [[f"[unexpected] {rest!r}"]] if rest else []))
                record[-1][2].append(["[connection closed]" if rd.closed
                                      else "[connection still open]"])
            else:
                rest = rd.drain(DRAIN_TIMEOUT_S)
                if rest:
                    record.append((None, [], [[f"[unexpected] {rest!r}"]]))
    finally:
        sock.close()
    return record


_QUEUE_ID = re.compile(r"(queued as )([0-9A-Za-z]{6,20})\b")
_LOOPBACK_NAME = re.compile(r"[A-Za-z0-9._-]+\[(127\.\d{1,3}\.\d{1,3}\.\d{1,3})\]")


def normalise(line):
    """The only differences allowed between targets: queue IDs and the loopback client's name
    (it comes from the host's resolver, not from the relay)."""
    line = _QUEUE_ID.sub(r"\1<QUEUE-ID>", line)
    return _LOOPBACK_NAME.sub(r"<LOOPBACK-NAME>[\1]", line)


def transcript(record):
    """The record as transcript lines ("C: ..." / "S: ..."), normalised, with runs of identical
    consecutive lines folded into "S*N: ..." so 10,000 pipelined replies stay readable."""
    flat = []
    for _index, shown, replies in record:
        flat += shown
        for r in replies:
            flat += ["S: " + normalise(l) for l in r]
    out = []
    for line in flat:
        kind, _, text = line.partition(": ")
        kind_base = kind.split("*")[0]
        n = int(kind.split("*")[1]) if "*" in kind else 1
        if out:
            pk, _, ptext = out[-1].partition(": ")
            if pk.split("*")[0] == kind_base and ptext == text and kind_base == "S":
                pn = int(pk.split("*")[1]) if "*" in pk else 1
                out[-1] = f"{kind_base}*{pn + n}: {text}"
                continue
        out.append(line)
    return out


def glob_match(pattern, text):
    """S: patterns: '*' matches any text (newlines too); every other character is literal."""
    rx = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(rx, text, re.S) is not None


def check_patterns(dlg, record):
    """Pattern failures as strings (empty when every S: line matched). The XCLIENT step and
    the greeting carry no patterns."""
    problems = []
    by_index = {index: replies for index, _shown, replies in record if index is not None}
    for i, st in enumerate(dlg.steps):
        if not st.patterns:
            continue
        replies = by_index.get(i)
        if replies is None:
            problems.append(f"line {st.line}: never sent")
            continue
        if len(replies) != len(st.patterns):
            problems.append(f"line {st.line}: {len(st.patterns)} pattern(s) for "
                            f"{len(replies)} repl(ies): {[r[-1] for r in replies][:3]}")
        for pat, r in zip(st.patterns, replies):
            text = "\n".join(normalise(l) for l in r)
            if not glob_match(pat, text):
                problems.append(f"line {st.line}: reply {text!r} does not match {pat!r}")
    return problems


def side_by_side(left, right, left_name, right_name, width=60):
    """Two transcripts next to each other; the first differing line is marked with '>>'."""
    n = max(len(left), len(right))
    first = next((i for i in range(n)
                  if (left[i] if i < len(left) else None) != (right[i] if i < len(right)
                                                               else None)), None)
    rows = [f"   {left_name:<{width}} | {right_name}", "   " + "-" * width + "-+-" + "-" * width]
    for i in range(n):
        a = left[i] if i < len(left) else "<missing>"
        b = right[i] if i < len(right) else "<missing>"
        mark = ">> " if i == first else ("!  " if a != b else "   ")
        a_cut = a if len(a) <= width else a[:width - 3] + "..."
        rows.append(f"{mark}{a_cut:<{width}} | {b}")
    return "\n".join(rows), first
