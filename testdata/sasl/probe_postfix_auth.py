#!/usr/bin/env python3
# Regenerates the cases of postfix-auth-cases.txt against a private Postfix 3.7 instance (see
# the project's "Running a private Postfix" recipe; smtpd.conf and sasldb as described in the
# golden file's header). Usage: write the instance directory to /tmp/sasl-pf-dir and its smtpd
# port to /tmp/sasl-pf-port, then `python3 probe_postfix_auth.py [case ...]`; HDRS="a|b" adds
# "# a" / "# b" setting lines to each case. Loopback only.
import socket, base64, hmac, hashlib, sys, time, json
PORT = int(open('/tmp/sasl-pf-port').read())
D = open('/tmp/sasl-pf-dir').read().strip()
def b64(s): return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()
class C:
    def __init__(s):
        s.s = socket.create_connection(('127.0.0.1', PORT), timeout=10); s.buf=b''
        s.reply(); s.cmd('EHLO client.example.net')
    def line(s):
        while b'\r\n' not in s.buf:
            d = s.s.recv(65536)
            if not d: r=s.buf; s.buf=b''; return r.decode('latin1')+'<EOF>'
            s.buf += d
        l, s.buf = s.buf.split(b'\r\n',1); return l.decode('latin1')
    def reply(s):
        ls=[]
        for _ in range(50):
            l=s.line(); ls.append(l)
            if len(l)<4 or l[3]!='-': break
        return ls
    def cmd(s, c):
        s.s.sendall(c.encode('latin1')+b'\r\n'); return s.reply()
def cram(chal_b64, user, pw):
    ch = base64.b64decode(chal_b64)
    return b64(user + ' ' + hmac.new(pw.encode(), ch, hashlib.md5).hexdigest())
HEADERS=[]
U='smtp-auth@example.com'; P='pass'
def run(name, steps):
    """steps: lines to send (str, or callable(previous reply lines) -> str)"""
    logsize = len(open(D+'/maillog','rb').read())
    c=C(); transcript=[]; last=None
    for i, st in enumerate(steps):
        if last and last[0][:3] in ('235','535','501','500','454','503','504','421') and not (isinstance(st,str) and st.upper().startswith('AUTH')): break
        line = st(last) if callable(st) else st
        r = c.cmd(line); last=r
        transcript.append((line if len(line)<120 else line[:60]+'...(%d bytes)'%len(line), r))
        if r[0].endswith('<EOF>'): break
    try: c.cmd('QUIT')
    except Exception: pass
    time.sleep(0.3)
    log = open(D+'/maillog','rb').read()[logsize:].decode('latin1').splitlines()
    log = [l.split(': ',1)[1] for l in log if 'smtpd[' in l and ('SASL' in l or 'request longer' in l)]
    print('## '+name)
    for h in HEADERS: print('# '+h)
    for l, r in transcript: print('C: '+l); [print('S: '+x) for x in r]
    for l in log: print('L: '+l)
    print()
cases = {
 'plain_ok': ['AUTH PLAIN '+b64('\0'+U+'\0'+P)],
 'plain_ok_bare_user_no_realm': ['AUTH PLAIN '+b64('\0smtp-auth\0'+P)],
 'plain_wrong_password': ['AUTH PLAIN '+b64('\0'+U+'\0wrong')],
 'plain_unknown_user': ['AUTH PLAIN '+b64('\0nobody@example.com\0'+P)],
 'plain_unknown_realm': ['AUTH PLAIN '+b64('\0smtp-auth@example.org\0'+P)],
 'plain_authzid_other': ['AUTH PLAIN '+b64('other@example.com\0'+U+'\0'+P)],
 'plain_authzid_same': ['AUTH PLAIN '+b64(U+'\0'+U+'\0'+P)],
 'plain_no_initial_ok': ['AUTH PLAIN', b64('\0'+U+'\0'+P)],
 'plain_no_initial_wrong': ['AUTH PLAIN', b64('\0'+U+'\0x')],
 'plain_bad_base64_initial': ['AUTH PLAIN !!!!'],
 'plain_bad_base64_step': ['AUTH PLAIN', '!!!!'],
 'plain_empty_initial_eq': ['AUTH PLAIN ='],
 'plain_empty_step': ['AUTH PLAIN', ''],
 'plain_garbage_no_nul': ['AUTH PLAIN '+b64('garbage')],
 'plain_one_nul': ['AUTH PLAIN '+b64('\0garbage')],
 'plain_two_nul_empty': ['AUTH PLAIN '+b64('\0\0')],
 'plain_empty_password': ['AUTH PLAIN '+b64('\0'+U+'\0')],
 'plain_trailing_nul': ['AUTH PLAIN '+b64('\0'+U+'\0'+P+'\0')],
 'plain_abort': ['AUTH PLAIN', '*'],
 'plain_lowercase_mech': ['auth plain '+b64('\0'+U+'\0'+P)],
 'plain_huge_step': ['AUTH PLAIN', 'A'*13000],
 'plain_big_step_ok_len': ['AUTH PLAIN', b64('\0'+U+'\0'+'x'*8000)],
 'login_ok': ['AUTH LOGIN', b64(U), b64(P)],
 'login_initial_ok': ['AUTH LOGIN '+b64(U), b64(P)],
 'login_wrong_password': ['AUTH LOGIN', b64(U), b64('wrong')],
 'login_unknown_user': ['AUTH LOGIN', b64('nobody@example.com'), b64(P)],
 'login_abort_at_password': ['AUTH LOGIN', b64(U), '*'],
 'login_empty_user': ['AUTH LOGIN', '', b64(P)],
 'login_empty_user_eq': ['AUTH LOGIN', '=', b64(P)],
 'login_bad_base64_password': ['AUTH LOGIN', b64(U), '!!!'],
 'cram_ok': ['AUTH CRAM-MD5', lambda r: cram(r[0][4:], U, P)],
 'cram_wrong': ['AUTH CRAM-MD5', lambda r: cram(r[0][4:], U, 'wrong')],
 'cram_unknown_user': ['AUTH CRAM-MD5', lambda r: cram(r[0][4:], 'nobody@example.com', P)],
 'cram_garbage': ['AUTH CRAM-MD5', b64('garbage')],
 'cram_initial_response': ['AUTH CRAM-MD5 '+b64('x')],
 'digest_garbage': ['AUTH DIGEST-MD5', b64('garbage')],
 'scram_garbage': ['AUTH SCRAM-SHA-256 '+b64('garbage')],
 'mech_unknown': ['AUTH XYZ'],
 'mech_installed_not_listed': ['AUTH NTLM'],
 'mech_anonymous': ['AUTH ANONYMOUS '+b64('x')],
 'auth_no_mech': ['AUTH'],
 'auth_twice': ['AUTH PLAIN '+b64('\0'+U+'\0'+P), 'AUTH PLAIN '+b64('\0'+U+'\0'+P)],
 'auth_after_failure_ok': ['AUTH PLAIN '+b64('\0'+U+'\0x'), 'AUTH PLAIN '+b64('\0'+U+'\0'+P)],
}
cases['plain_ok_bare_user'] = ['AUTH PLAIN '+b64('\0smtp-auth\0'+P)]
cases['plain_wrong_bare_user'] = ['AUTH PLAIN '+b64('\0smtp-auth\0wrong')]
cases['login_wrong_bare_user'] = ['AUTH LOGIN', b64('smtp-auth'), b64('wrong')]
import os
HEADERS[:] = [h for h in os.environ.get('HDRS','').split('|') if h]
sel = sys.argv[1:] or [c for c in cases if not c.endswith('_bare_user')]
for n in sel:
    st = cases[n]
    run(n, st)
