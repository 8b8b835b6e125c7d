#!/usr/bin/env python3
"""make-scale.py: writes scale-10k.xml, scale-1k.xml and mx.zone beside itself.

The scale topology (issue 16): clients in 20 private subnets behind a NAT gateway, 3 relays in a
public subnet, 100 fake MX hosts on the internet with mixed behaviour (accept, slow, greylist,
busy), all of example.net's MX records at one preference. Each subnet's clients load one relay
(subnet i -> relay i % 3). scale-10k: 10,000 clients x 10 messages = 100,000 (bench/README.md);
scale-1k: 1,000 clients x 2 = 2,000 (CTest, cli.run_scale_deterministic); scale-200: 200 x 2 =
400 (the same test in the sanitizer build, where scale-1k would take too long).
"""
import os

here = os.path.dirname(os.path.abspath(__file__))
MX = [  # prefix, count, script
    ("mx-accept-", 50, None),
    ("mx-slow-", 25, 'stage dot delay 250ms accept'),
    ("mx-grey-", 15, 'greylist 1'),
    ("mx-busy-", 10, 'stage mail reply "451 4.3.2 System busy, try later" times 20'),
]


def zone():
    lines = ["; make-scale.py: example.net's 100 MX hosts (their addresses as <hosts> assigns them)"]
    addr = 1
    for prefix, count, _ in MX:
        for i in range(1, count + 1):
            lines.append(f"example.net MX 10 {prefix}{i}")
    for prefix, count, _ in MX:
        for i in range(1, count + 1):
            lines.append(f"{prefix}{i} A 198.51.100.{addr}")
            addr += 1
    return "\n".join(lines) + "\n"


def topology(name, per_subnet, per_host):
    total = 20 * per_subnet * per_host
    out = []
    w = out.append
    w('<?xml version="1.0" encoding="UTF-8"?>')
    w(f'<!-- Written by make-scale.py (edit that, not this). {20 * per_subnet} clients in 20 private')
    w('     subnets behind a NAT gateway, 3 relays, 100 fake MX hosts on the internet (50 accept, 25')
    w('     slow, 15 greylist, 10 busy at MAIL for their first 20 transactions); every client sends')
    w(f'     {per_host} messages to its subnet\'s relay: {total} in all. -->')
    w(f'<topology xmlns="urn:relaylab:topology:1" name="{name}" seed="16">')
    w('  <internet latency="10ms"/>')
    w('  <vpc name="sites" cidr="10.0.0.0/16">')
    w('    <internet-gateway name="igw"/>')
    w('    <nat-gateway name="nat" subnet="public" public-ip="203.0.113.100"/>')
    w('    <route-table name="rt-public">')
    w('      <route destination="10.0.0.0/16" target="local"/>')
    w('      <route destination="0.0.0.0/0" target="igw"/>')
    w('    </route-table>')
    w('    <route-table name="rt-private">')
    w('      <route destination="10.0.0.0/16" target="local"/>')
    w('      <route destination="0.0.0.0/0" target="nat"/>')
    w('    </route-table>')
    w('    <security-group name="relay-sg">')
    w('      <ingress ports="25" cidr="10.0.0.0/16"/>')
    w('      <egress protocol="all" cidr="0.0.0.0/0"/>')
    w('    </security-group>')
    w('    <subnet name="public" cidr="10.0.200.0/24" route-table="rt-public" latency="100us"/>')
    for s in range(20):
        w(f'    <subnet name="clients-{s + 1}" cidr="10.0.{2 * s}.0/23" route-table="rt-private"'
          ' latency="200us"/>')
    w('  </vpc>')
    w('  <dns><zone file="mx.zone"/></dns>')
    for r in range(3):
        w(f'  <host name="relay-{r + 1}" subnet="public" ipv4="10.0.200.{10 + r}"'
          f' public-ipv4="203.0.113.{10 + r}"')
        w('        security-groups="relay-sg">')
        w('    <relay>')
        w('      <main-cf>')
        w(f'        myhostname = relay-{r + 1}.example.com')
        w('        mynetworks = 10.0.0.0/16')
        w('        smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination')
        w('      </main-cf>')
        w('    </relay>')
        w('  </host>')
    for s in range(20):
        w(f'  <hosts name="clients-{s + 1}" count="{per_subnet}" prefix="c{s + 1}-"'
          f' subnet="clients-{s + 1}"><client/></hosts>')
    for prefix, count, script in MX:
        w(f'  <hosts count="{count}" prefix="{prefix}" cidr="198.51.100.0/25" latency="5ms">')
        if script:
            w(f'    <mx><script>{script.replace(chr(34), "&quot;")}</script></mx>')
        else:
            w('    <mx/>')
        w('  </hosts>')
    w(f'  <scenario name="load-{total}" time-max="1d">')
    for s in range(20):
        w(f'    <load name="clients-{s + 1}" group="clients-{s + 1}" server="10.0.200.{10 + s % 3}"'
          f' messages-per-host="{per_host}"')
        w('          from="load@example.com" to="sink@example.net"/>')
    w('    <wait until="loads-done" for="6h"/>')
    w('    <wait until="queue-empty" for="12h"/>')
    for s in range(20):
        w(f'    <expect-load step="clients-{s + 1}" accepted="{per_subnet * per_host}" failed="0"/>')
    w(f'    <expect-maillog pattern="*postfix/smtp[*]: *status=sent*" count="{total}"/>')
    w('    <expect-queue incoming="0" active="0" deferred="0"/>')
    w('  </scenario>')
    w('</topology>')
    return "\n".join(out) + "\n"


open(os.path.join(here, "mx.zone"), "w").write(zone())
open(os.path.join(here, "scale-10k.xml"), "w").write(topology("scale-10k", 500, 10))
open(os.path.join(here, "scale-1k.xml"), "w").write(topology("scale-1k", 50, 2))
open(os.path.join(here, "scale-200.xml"), "w").write(topology("scale-200", 10, 2))
