#!/usr/bin/env python3
"""Records smtpd_check.ref by playing smtpd_check.in against a private Postfix instance.

Usage: record.py PORT_BASE   (run as root; starts and stops its own instance in /tmp; talks
only to 127.0.0.1). Each profile becomes one smtpd service in master.cf with -o overrides.
"""
import os, re, shutil, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse(path):
    profiles = []  # [name, [(k, v)], [commands]]
    for raw in open(path):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "profile":
            profiles.append([rest.strip(), [], []])
        elif word == "config":
            k, _, v = rest.partition("=")
            profiles[-1][1].append((k.strip(), v.strip()))
        else:
            profiles[-1][2].append(line)
    return profiles


TESTDATA = HERE  # replaced by a copy with compiled alias databases in main()


def subst(s):
    return s.replace("@TESTDATA@", TESTDATA)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def reply(self):
        lines = []
        for _ in range(100):
            while b"\r\n" not in self.buf:
                try:
                    chunk = self.s.recv(4096)
                except TimeoutError:
                    return "(timeout)"
                if not chunk:
                    return "(connection closed)"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        last = lines[-1]
        return re.sub(r"queued as [0-9A-F]+", "queued as QUEUEID", last)

    def send(self, data):
        self.s.sendall(data.encode())


def run_session_commands(port, cmds, out):
    conn = None
    for cmd in cmds:
        word, _, arg = cmd.partition(" ")
        out.append(">>> " + cmd)
        if word == "session":
            if conn:
                try:
                    conn.send("QUIT\r\n")
                except OSError:
                    pass
            parts = arg.split()
            conn = Conn(port)
            banner = conn.reply()
            if not banner.startswith("220"):
                out.append(banner)
                continue
            name = "[UNAVAILABLE]" if parts[1] == "unknown" else parts[1]
            x = "XCLIENT ADDR=%s NAME=%s" % (parts[0], name)
            if len(parts) > 2:
                x += " LOGIN=" + parts[2]
            conn.send(x + "\r\n")
            out.append(conn.reply())
            continue
        if word in ("helo", "ehlo"):
            conn.send("%s %s\r\n" % (word.upper(), arg))
        elif word == "mail":
            a = arg if arg == "<>" else "<%s>" % arg
            conn.send("MAIL FROM:%s\r\n" % a)
        elif word == "rcpt":
            conn.send("RCPT TO:<%s>\r\n" % arg)
        elif word == "data":
            conn.send("DATA\r\n")
        elif word == "eod":
            conn.send("Subject: test\r\n\r\nbody\r\n.\r\n")
        elif word == "rset":
            conn.send("RSET\r\n")
        elif word == "etrn":
            conn.send("ETRN %s\r\n" % arg)
        elif word == "pipe_data":
            conn.send("DATA\r\nSubject: test\r\n\r\nbody\r\n.\r\n")
            out.append(conn.reply())
            conn.s.close()
            conn = None
            continue
        elif word == "pipe_mail":
            conn.send("MAIL FROM:<%s>\r\nRSET\r\n" % arg)
            out.append(conn.reply())
            conn.reply()
            continue
        else:
            raise SystemExit("bad command: " + cmd)
        out.append(conn.reply())
    if conn:
        try:
            conn.send("QUIT\r\n")
        except OSError:
            pass


def main():
    base = int(sys.argv[1])
    profiles = parse(os.path.join(HERE, "smtpd_check.in"))
    d = tempfile.mkdtemp(prefix="pf.policy.")
    os.chmod(d, 0o755)
    global TESTDATA
    TESTDATA = os.path.join(d, "testdata")
    shutil.copytree(HERE, TESTDATA)
    # Postfix reads hash: tables from NAME.db; relaylab reads the source file NAME itself.

    for sub in ("etc", "spool", "data", "etc/sasl"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    main_cf = subst(open(os.path.join(HERE, "main.cf")).read())
    main_cf += f"""
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_protocols = all
disable_dns_lookups = yes
smtp_dns_support_level = disabled
maillog_file = {d}/maillog
maillog_file_prefixes = /var,/dev/stdout,/tmp
smtpd_authorized_xclient_hosts = 127.0.0.0/8
cyrus_sasl_config_path = {d}/etc/sasl
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
default_transport = discard
local_transport = discard
relay_transport = discard
"""
    open(f"{d}/etc/main.cf", "w").write(main_cf)
    open(f"{d}/etc/sasl/smtpd.conf", "w").write(
        f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN\nsasldb_path: {d}/etc/sasldb2\n")
    master = []
    for line in open("/etc/postfix/master.cf"):
        if not line.strip() or line.startswith("#") or line[0].isspace():
            continue
        f = line.split()
        if f[0] == "smtp" and f[1] == "inet":
            continue
        if f[0] in ("maildrop", "uucp", "ifmail", "bsmtp", "scalemail-backend", "mailman"):
            continue
        f[4] = "n"
        master.append(" ".join(f))
    for i, (name, conf, _) in enumerate(profiles):
        opts = " ".join("-o { %s = %s }" % (k, subst(v)) for k, v in conf)
        master.append("127.0.0.1:%d inet n - n - - smtpd -o syslog_name=postfix/%s %s"
                      % (base + i, name, opts))
    open(f"{d}/etc/master.cf", "w").write("\n".join(master) + "\n")
    subprocess.run(["postalias", "-c", f"{d}/etc", "hash:" + os.path.join(TESTDATA, "aliases")],
                   check=True)
    subprocess.run(["chown", "-R", "postfix", f"{d}/data"], check=True)
    subprocess.run(["postfix", "-c", f"{d}/etc", "set-permissions"], check=False,
                   capture_output=True)
    subprocess.run(["script", "-qc", f"postfix -c {d}/etc start", "/dev/null"], check=True)
    try:
        time.sleep(2)
        out = []
        for i, (name, conf, cmds) in enumerate(profiles):
            out.append(">>> profile " + name)
            run_session_commands(base + i, cmds, out)
        open(os.path.join(HERE, "smtpd_check.ref"), "w").write("\n".join(out) + "\n")
    finally:
        subprocess.run(["postfix", "-c", f"{d}/etc", "stop"], capture_output=True)
        time.sleep(1)
        print("maillog kept at", d + "/maillog")


if __name__ == "__main__":
    main()
