"""Benchmark: `collect analyze --json` against tshark on captures of three shapes, the same facts from both.

How to run (from the repository root, as root after scripts/setup.sh: the first run makes five live captures
with tcpdump, nginx, a JDK and openssl, then builds the captures, about a minute and ~1.5 GB of disk in
--work; later runs reuse them):

    .venv/bin/python -m bench.analyze [--shape dense bulk] [--work /tmp/apigee-bench] [--rebuild]
                                      [--runner cli|reader] [--size-mb 320] [--copies 150]
    .venv/bin/python -m bench.analyze --shape large [--large-mb 1024] [--with-tshark]
    .venv/bin/python -m bench.analyze --shape dense --instructions    (both under valgrind, ~10 min)
    .venv/bin/python -m bench.analyze --shape dense --format pcapng   (the packets as Wireshark saves them)

The shapes (each built once and cached in --work/SHAPE/, keyed by a digest of its recipe and the fixtures):
- dense (issue 15's handshake-dense shape: an MP capture filtered on one backend): ~2,780 real loopback TLS
  connections, 89 MB, 104 k packets, 1,397 CertificateRequests, no key log. Made of every fixture capture in
  tests/fixtures/captures/, failures/ and transport/ (JSSE, OpenSSL and nginx; TLS 1.2 and 1.3; healthy,
  failing, refused, unanswered) plus five live calls made here once (JSSE and `openssl s_client` GETting a
  60 KB body from nginx with `ssl_verify_client optional`: TLS 1.2 with and without a client certificate,
  TLS 1.3), all re-segmented at MSS 1448 and replicated with rewritten client addresses and ports, one
  backend port (8443) and new timestamps, written as Linux cooked (SLL2) frames as the run's `tcpdump -i any`
  writes them (Ethernet until 2026-12-03); half of the connections carry a CertificateRequest; at most 64 are
  open at once. Every connection's bytes are what the real stacks sent. tshark is told the backend port is
  TLS (-d), as an operator who filtered on the backend would be; without it, it misses connections where the
  server's alert is the first TLS byte.
- bulk (the earlier shape): every IPv4 scenario capture of tests/fixtures/captures re-segmented at MSS 1448
  and replicated --copies times, plus bulk TLS 1.2 flows (healthy handshake + 16 KB application-data records,
  mostly server -> client) up to --size-mb; all flows interleaved. The TLS 1.3 key logs are merged into a
  key file given to both engines.
- large: 12 copies of the dense capture (1,065 MB, 1.25 M packets, 32 k handshakes; client addresses and times
  rewritten per copy); only ours runs unless --with-tshark: it shows the time and that memory stays bounded.

For each shape, one after the other in the same run: `collect analyze --json CAPTURE [KEYS]` (or with
--runner reader, a minimal `read_handshakes` runner) and tshark's equivalent extraction
(`tshark -r CAPTURE -Y "tls.handshake.type in {1,2,11,13} or tls.alert_message" -T fields -e tcp.stream
-e tls.handshake.type -e tls.handshake.certificates_length -e tls.alert_message.desc`). Both must find the
ground truth's CertificateRequests, empty client Certificates and alerts by code (exit 1 otherwise). Printed:
wall and CPU seconds, MB/s, the ratio tshark / ours, peak RSS. CPU seconds are the steadier figure on a
shared machine, but this machine's speed has moved 2x within an hour; --instructions also counts the
instructions each engine executes (valgrind's callgrind: the same count whatever the load; times and RSS
are then callgrind's). Instructions are not time: tshark's run more per cycle than the interpreter's, so
the instruction ratio reads higher than the CPU one; it tells whether a change to ours moved, not the target.
Issue 15's targets: ours >= 5x tshark on dense and bulk with peak RSS <= 100 MB, and
<= 150 MB on large. Not part of the test suite (timings are not tests).

Results here (2 vCPUs shared with other helpers' jobs, load average 2-9; 2026-12-02), tshark 4.0 from the same
run; main before issue 15 -> branch fastanalyze -> branch fastanalyze2:
- dense: ours 2.05 s CPU, 113 MB -> 1.29 s, 51 MB -> 1.11 s CPU (1.2 s wall), 49 MB; tshark 3.5-3.7 s CPU,
  303 MB: 1.6x -> 2.8x -> 3.1-3.3x CPU. Still short of issue 15's 5x (<= ~0.7 s CPU). Where the 1.0-1.1 s
  goes (dense, measured): interpreter and imports ~0.25 s (own modules ~0.13: ~50 dataclasses and module
  code; cryptography, asn1crypto, click ~0.05); the loop over 104 k packets ~0.16 s even when every packet
  is dropped at once (~1.5 us each, reading included); TLS work of the 2,665 connections ~0.4 s (13 k
  plaintext handshake segments ~0.2 s, sealed segments ~0.1 s, Session and Handshake making ~0.1 s); JSON
  0.11 s. No part alone closes the gap in CPython. Compiling the reader (collector/tls connections,
  session, records, reassembly, pcap, messages) with mypyc, unchanged, gave 1.05 -> 0.83 s CPU with the
  same output and tests/tls passing: the way to 5x, if a compiled build is acceptable.
- bulk: ours 3.5 s CPU, 157 MB -> 2.3 s, 61 MB -> 2.0 s CPU, 60 MB; tshark 37-41 s CPU, 691 MB: 10x -> 15.5x
  -> 20x.
- large: ours 11.1 s CPU, 129 MB -> 10.1 s CPU, 129 MB peak RSS; every count equal to the ground truth.

Later the same day (a slower, noisier machine: tshark 5.0-7.4 s on dense): ours 2.4-3.6x tshark on dense
(main before the session measured in the same runs with --baseline-tree: within noise of it). Tried and not
merged: reading one capture in two processes (each follows the connections whose flow hash falls to it, the
parent merges; JSON byte-identical): with the second CPU idle -15 % wall for +27 % CPU, with it busy slower,
and on the 1 GB capture 187 MB summed RSS; each process still walks every packet, and the imports and JSON
stay serial, so on 2 cores it cannot reach 5x. What remains is compiled code for the reader (mypyc above).

The next session found that every figure above paid for compiling ~65 of our modules from source at each
start: PYTHONDONTWRITEBYTECODE is set on these machines and an editable install never wrote the bytecode
(~0.1-0.15 s per `collect analyze`). The bench now byte-compiles each tree first (`bench.byte_compile`), as an
installed tool has it, and `collect` skips the interpreter's final garbage collection (~0.1 s). Dense, same
machine, one run each: 2.4-3.6x before -> 3.2-4.5x (ours 1.52-1.90 s CPU, tshark 6.1-6.8 s); bulk 22x,
59 MB. Of ours' ~1.5 s: imports ~0.25 s, reading ~1.0 s, JSON ~0.19 s (to_json 0.07 of it), diagnosis 0.02.

A new, faster machine (2026-12-02, evening), same code: dense ours 0.85 s CPU, tshark 2.78 s: 3.25x (of
ours: imports 0.14 s, reading 0.57 s, JSON 0.08 s, diagnosis 0.01 s); an hour later, the machine slower,
ours 1.80 s and tshark 3.64 s: 2.0x; bulk 13.5x (ours 3.3 s, 60 MB; tshark 44.7 s, 691 MB); large: 1,064 MB
in 12.9 s CPU, peak RSS 129.5 MB, counts equal to the ground truth. 5x on dense needs ours <= ~0.55 s there.
Measured again: mypyc on the reader's seven modules (connections, session, records, reassembly, pcap,
messages, packets; unchanged source, 18 s to build) cut reading 0.57 -> 0.37 s, ours ~0.61 s: ~4.5x, still
short, and it would mean a C build in setup and a compiled `.so` beside each `.py` that shadows edits to it.

2026-12-03 (a slow hour: tshark 4.0-5.2 s CPU on dense). Three changes to the reader: records and messages
read in place from the segment (no bytearray copy when nothing is pending), a TLS 1.2 connection settled at
its second Finished (half of dense's packets were its sealed application data), and connections keyed by
the frame's own address and port bytes so a settled connection's packet costs a slice and a lookup. Dense,
start of the session vs after, same run (--baseline-tree): ours 1.85 -> 1.55 s CPU, tshark 5.16 s: 2.79x ->
3.32x; another run 3.23x (ours 1.23 s, tshark 3.98 s). Instructions (callgrind, `collect analyze --json`):
4.635 -> 4.211 G, of which reading 3.814 -> 3.351 G (-12 %); tshark 19.408 G: 4.19x -> 4.61x; with JSON's
scalars written inline, 4.131 G: 4.70x. Of ours' 4.21 G: interpreter start and imports ~0.72 G
(cryptography.x509 ~0.27 G, asn1crypto ~0.18 G, click ~0.13 G), reading ~2.85 G, diagnosis and JSON ~0.65
G. Bulk 16.0x (ours 3.05 s, 58 MB; tshark 48.7 s); large: 1,064 MB in 15.9 s CPU, peak RSS 117.0 MB (was
129.5: TLS 1.2 connections free their buffers sooner).

Then the reader's fast path was found to take Ethernet frames only: the run's own captures (`tcpdump -i any`:
Linux cooked, SLL2) went through the general decoder frame by frame, 5.116 G instructions to read dense
rewritten as SLL2 against 3.351 G as Ethernet. The fast path now takes SLL and SLL2 too (3.351 G), and the
bench writes its captures as SLL2, like the run's. Dense (SLL2), same run: session start (5d474aa) 2.13 s
CPU, 2.00x tshark -> 1.24 s, 3.45x (tshark 4.26 s); another run 2.93x (ours 1.34 s, tshark 3.91 s). Bulk
(SLL2) 12.9x (ours 2.96 s, 57 MB; tshark 38.2 s); large (SLL2): 1,071 MB in 11.9 s CPU, peak RSS 115.4 MB.
--instructions on dense (SLL2): ours 4.146 G, tshark 17.804 G (fewer than on Ethernet's 19.408): 4.29x.

2026-12-03, later: capture times written with isoformat instead of strftime (4.182 -> 4.169 G). Dense, four
runs on an idle machine: 4.67x, 4.05x, 3.54x, 4.04x CPU (ours 1.33-1.64 s, tshark 5.8-6.4 s; 2.5x in a
run where tshark took 4.0 s), peak RSS 46 MB; bulk 19.1x (ours 2.98 s CPU, 59 MB; tshark 56.8 s, 715 MB).
Where ours' time goes now (py-spy, 2 kHz): imports 23 % (48 dataclasses made at import 7 %, cryptography's
own regexes 1.5 %), the packet loop 12 %, segments of unsettled connections 39 % (24 k of 105 k packets:
reassembly, records, messages, ClientHello parsing), handshake values 7 %, JSON 10 %. Not worth keeping:
importing asn1crypto lazily (the diagnosis decodes CertificateRequest names with it anyway: -0.2 %).
Then pcapng (what Wireshark saves; --format pcapng) took the fast path too: reading dense as pcapng 4.99 ->
3.52 G instructions (pcap 3.39 -> 3.40 G: one loop serves both); same runs with --baseline-tree (3c86939):
1.27 -> 0.86 s CPU (tshark 4.15 s: 3.26x -> 4.84x) and 1.03 -> 0.86 s (tshark 3.07 s: 2.99x -> 3.56x).

2026-12-03, next session (--repeat, so each engine is its fastest of N runs in rounds): dense instructions
4.179 -> 3.390 G (tshark 17.8-18.1 G: 4.29x -> 5.25-5.35x; --instructions: 5.20x midway, at 3.487 G).
What moved them: the JSON writer making repeated parts only on a miss and its keys' text once (0.52 ->
0.33 G), ClientHello parsing with plain offsets (22 -> 9 us a hello: -0.12 G), one unpack for a pcap
record's length, link protocol, IP version, key and TCP flags (-0.19 G), in-order segments without
Stream.add, records and messages cut from bytes, reverse keys kept, address texts cached (-0.15 G). In CPU
time the biggest single change costs few instructions: the buffer no longer joins the rest of a chunk with
the whole next 1 MiB one (a copy of the file into fresh memory; half the page faults). Dense, --repeat 5
with --baseline-tree at the session's start (984775f), three runs: 5.61x / 4.28x, 5.19x / 4.42x,
5.41x / 3.83x CPU (ours 0.96-1.01 s, baseline 1.18-1.37 s, tshark 5.24-5.40 s); one run in a slower
stretch gave ours 4.47x and another 3.95x alone (ours 1.14-1.15 s, tshark 4.49-5.17 s). Bulk 18.9x (ours
2.47 s, 57 MB; tshark 46.7 s); large: 1,071 MB in 12.8 s CPU (baseline 17.2 s), peak RSS 116.4 MB.
Where ours' time goes now (py-spy): imports ~35 % of the samples (dataclass methods compiled at import
7 %, unmarshalling 4.3 MB of bytecode 5 %, of which asn1crypto 444 KB, click 409 KB, cryptography 457 KB,
ours 679 KB), reading ~55 %, JSON ~6 %. Tried and not kept: filling each Handshake's dict at once instead
of its frozen __init__ (-0.08 G, but 528 instead of 264 bytes a handshake: +9 MB on large).

2026-12-03, third session: dense instructions 3.390 -> 3.227 G (tshark 18.117 G: 5.61x). What moved them:
names decoded by cryptography first, so a capture no longer imports asn1crypto, nor cryptography's
serialization package (PEM and truststores only), nor the probe survey model (-0.10 G together, ~40 ms of
CPU); the IPv4/TCP unpack no longer building the addresses and ports it threw away (-0.06 G). New: the
ratio round by round (the runs of one round are seconds apart; rounds alternate which engine goes first),
because the fastest of each engine can pair a quiet moment for one with a busy one for the other (one run:
fastest of each 4.53x, round by round 4.43-5.53x, median 5.31x). The machine still moves both: dense
round-by-round medians 5.31x, 4.34x and 4.72x in three runs (ours' fastest 0.77-1.03 s, tshark's
3.33-5.12 s). Bulk 27.4x (ours
1.60 s, 52 MB; tshark 43.8 s, 715 MB); large: 1,074 MB in 9.6 s CPU, peak RSS 113.7 MB.
What is left is mostly fixed cost: the imports are ~20 % of the instructions (click 0.13 G and
cryptography.x509 0.27 G of them, which any use of either costs; dataclass methods compiled at import
0.17 G), and the handshake segments of unsettled connections (24 k of 105 k packets) a third of the rest.

2026-12-03, fourth session: the reader compiled with mypyc (collector/tls/compiled_reader.py; setup.sh
builds it, and `ours` runs it when the tree holds a build: the label says which; --also-source runs the
source beside it in the same rounds). Dense instructions 3.227 -> 2.481 G compiled as it was, -> 2.150 G
with the packet loop's unpacked fields typed (machine integers instead of the object protocol: -0.23 G) and
the hot modules' constants Final (compiled in instead of a namespace lookup each: -0.10 G): tshark 18.120 G,
8.43x. CPU, dense, --repeat 6 --also-source, four runs: compiled round-by-round medians 5.73x, 5.90x,
6.78x, 6.54x (lowest round 5.58x; ours' fastest 0.72-1.01 s), the source in the same rounds 4.13x, 4.42x,
4.24x (tshark's fastest 5.0-6.0 s); as pcapng 6.76x against 4.29x. Bulk 32x (compiled 1.61 s, source
1.90 s, tshark 51.9 s); large 1,074 MB in 7.6 s CPU, peak RSS 119.5 MB (the libraries add ~6 MB).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import byte_compile
from tests.tls import rewrite

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "fixtures" / "captures"
MSS = 1448
DENSE_CONNECTIONS = 2_800
DENSE_OPEN_AT_ONCE = 64
# The dense shape's one backend port: tshark is told it is TLS (-d), as an operator who filtered the capture
# on the backend would; without that it misses connections where the server's alert is the first TLS byte.
BACKEND_PORT = 8443
_BUILD_VERSION = "7"  # bump when a builder changes what it writes: cached captures are rebuilt
# The captures' link type: Linux cooked v2, what the run's `tcpdump -i any` writes on an MP or a backend
LINKTYPE, LINK_HEADER = 276, 20


@dataclasses.dataclass
class Truth:
    """What the built capture holds by construction (counted from the per-fixture reading times copies)."""

    handshakes: int = 0
    certificate_requests: int = 0
    empty_client_certificates: int = 0
    alerts: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, result: object, copies: int = 1) -> None:
        """Count `copies` times what `read_handshakes` found in one fixture."""
        for handshake in result.handshakes:  # type: ignore[attr-defined]  # a CaptureResult
            self.handshakes += copies
            self.certificate_requests += copies * (handshake.certificate_request is not None)
            self.empty_client_certificates += copies * bool(
                handshake.client_certificate and not handshake.client_certificate.sent
            )
            for alert in handshake.alerts:
                self.alerts[alert.code] += copies

    def to_json(self) -> dict[str, object]:
        return {
            "handshakes": self.handshakes,
            "certificate_requests": self.certificate_requests,
            "empty_client_certificates": self.empty_client_certificates,
            "alerts": {str(k): v for k, v in sorted(self.alerts.items())},
        }


# -- bulk shape ----------------------------------------------------------------------------------------------
def _fixtures() -> list[Path]:
    """Plain IPv4 scenario captures (the IPv6 one is left out: the rewriter renumbers IPv4 addresses)."""
    return sorted(p for p in CAPTURES.glob("*.pcap") if "ipv6" not in p.name)


def _relabel(
    segs: list[rewrite.Seg], client_ip: bytes, client_port: int, server_port: int | None = None
) -> list[rewrite.Seg]:
    """The flow with the client's address and port (and the server's port, when given) replaced."""
    client = (segs[0].src, segs[0].sport)
    out = []
    for seg in segs:
        if seg.other is not None:
            continue
        if (seg.src, seg.sport) == client:
            out.append(
                dataclasses.replace(seg, src=client_ip, sport=client_port, dport=server_port or seg.dport)
            )
        else:
            out.append(
                dataclasses.replace(seg, dst=client_ip, dport=client_port, sport=server_port or seg.sport)
            )
    return out


def _bulk_flow(template: list[rewrite.Seg], megabytes: float, rng: random.Random) -> list[rewrite.Seg]:
    """The template's handshake followed by application data, mostly from the server, then its FINs."""
    fin = next(i for i, s in enumerate(template) if s.flags & 0x01)
    head, tail = template[:fin], template[fin:]
    next_seq: dict[tuple[bytes, int], int] = {}
    for seg in head:
        next_seq[(seg.src, seg.sport)] = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
    client, server = head[0], head[1]
    record = b"\x17\x03\x03\x40\x18" + bytes(rng.getrandbits(8) for _ in range(64)) * 256 + b"\x00" * 24
    out = list(head)
    sent = 0
    while sent < megabytes * 1e6:
        for seg, count in ((client, 1), (server, 8)):
            key = (seg.src, seg.sport)
            for _ in range(count):
                for piece in range(0, len(record), MSS):
                    out.append(
                        dataclasses.replace(
                            seg, seq=next_seq[key], flags=0x18, payload=record[piece : piece + MSS]
                        )
                    )
                    next_seq[key] = (next_seq[key] + len(record[piece : piece + MSS])) & 0xFFFFFFFF
                sent += len(record)
    for seg in tail:  # the closing segments move past the inserted data
        key = (seg.src, seg.sport)
        out.append(dataclasses.replace(seg, seq=next_seq[key]))
        next_seq[key] = (next_seq[key] + len(seg.payload)) & 0xFFFFFFFF
    return out


def build_bulk(pcap: Path, keys_path: Path, size_mb: int, copies: int) -> Truth:
    """Write the bulk-shape capture and the merged key log; return the ground truth."""
    from collector.tls.capture import read_handshakes
    from collector.tls.keylog import KeyLog, load_keylog

    rng = random.Random(7)
    truth = Truth()
    keys_text, keylog = [], KeyLog()
    for keys in sorted(CAPTURES.glob("*.keys")):
        keys_text.append(keys.read_text())
        keylog = keylog.merge(load_keylog(keys))
    flows: list[list[rewrite.Seg]] = []
    port = 0
    for fixture in _fixtures():
        template = rewrite.resegment(rewrite.segments(fixture), MSS)
        truth.add(read_handshakes(fixture, keylog), copies)
        for copy in range(copies):
            port += 1
            # client ports from the dynamic range: tshark picks dissectors by port (2099 would be TPKT)
            flows.append(
                _relabel(template, bytes([10, 1 + copy // 250, copy % 250, 1]), 49152 + port % 16000)
            )
    handshake_bytes = sum(len(s.payload) + 54 for f in flows for s in f)
    healthy = rewrite.segments(CAPTURES / "healthy-openssl-tls12.pcap")
    bulk_needed = max(0.0, size_mb * 1e6 - handshake_bytes)
    bulk_flows = max(1, int(bulk_needed // 8e6))
    healthy_result = read_handshakes(CAPTURES / "healthy-openssl-tls12.pcap")
    for number in range(bulk_flows):
        flows.append(
            _bulk_flow(
                _relabel(healthy, bytes([10, 200, number // 250, number % 250 + 1]), 40000),
                bulk_needed / bulk_flows / 1e6,
                rng,
            )
        )
        truth.add(healthy_result)
    keys_path.write_text("".join(keys_text))
    _write_interleaved(pcap, flows, rng, open_at_once=len(flows))
    return truth


# -- dense shape ---------------------------------------------------------------------------------------------
def _dense_fixtures() -> list[Path]:
    """Every single-stack IPv4 fixture capture: scenarios, failure families and transport cases."""
    found = [p for p in CAPTURES.glob("*.pcap") if "ipv6" not in p.name]
    found += CAPTURES.glob("failures/*.pcap")
    found += CAPTURES.glob("transport/*.pcap")
    return sorted(found)


def _connections(segs: list[rewrite.Seg]) -> list[list[rewrite.Seg]]:
    """The fixture's TCP connections (by port pair), in the order they start; non-TCP frames dropped."""
    by_pair: dict[frozenset, list[rewrite.Seg]] = {}
    for seg in segs:
        if seg.other is None:
            by_pair.setdefault(frozenset(((seg.src, seg.sport), (seg.dst, seg.dport))), []).append(seg)
    return list(by_pair.values())


LIVE_COPIES = 220  # copies of each live call: ~1,100 of the ~2,800 connections carry a response body
BODY_BYTES = 60_000  # the response body of the live calls: an API payload, so connections carry data too
_LIVE_CALLS = {  # name -> (protocol, client, client options); every call GETs the body over two-way TLS
    "mtls-java-nginx-tls12": ("TLSv1.2", "java", ("trust={ca_a}", "keystore={keystore}", "host=backend.lab")),
    "nocert-java-nginx-tls12": ("TLSv1.2", "java", ("trust={ca_a}", "host=backend.lab")),
    "mtls-openssl-nginx-tls12": ("TLSv1.2", "openssl", ("-cert", "{client_cert}", "-key", "{client_key}")),
    "mtls-java-nginx-tls13": ("TLSv1.3", "java", ("trust={ca_a}", "keystore={keystore}", "host=backend.lab")),
    "mtls-openssl-nginx-tls13": ("TLSv1.3", "openssl", ("-cert", "{client_cert}", "-key", "{client_key}")),
}


def live_captures(folder: Path) -> list[Path]:
    """Real loopback captures of JSSE and `openssl s_client` fetching a BODY_BYTES response from nginx that
    asks for a client certificate (ssl_verify_client optional), one file per call kind; made once (needs root
    for tcpdump, nginx and a JDK: scripts/setup.sh) and kept in `folder`."""
    wanted = [folder / f"{name}.pcap" for name in _LIVE_CALLS]
    if all(p.exists() for p in wanted):
        return wanted
    from tests.fixtures.make_captures import free_port
    from tests.lab.backends import java_command, nginx_command, start_process, wait_for_port
    from tests.lab.lab import start_tcpdump
    from tests.lab.pki import create_pki

    folder.mkdir(parents=True, exist_ok=True)
    pki = create_pki(folder / "pki")
    (folder / "www").mkdir(exist_ok=True)
    body = bytes(random.Random(5).choices(b"abcdefgh{}:,\n", k=BODY_BYTES))
    (folder / "www" / "index.html").write_bytes(body)
    for (name, (protocol, client, options)), pcap in zip(_LIVE_CALLS.items(), wanted, strict=True):
        port = free_port("127.0.0.1")
        servers = f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name backend.lab;
        ssl_certificate {pki.backend_chain};
        ssl_certificate_key {pki.backend_key};
        ssl_protocols {protocol};
        ssl_verify_client optional;
        ssl_client_certificate {pki.ca_a_cert};
        root {folder / "www"};
    }}"""
        argv = nginx_command(folder / f"nginx-{name}", servers)
        server = start_process("nginx", argv, folder / f"{name}.out")
        try:
            wait_for_port(server, "127.0.0.1", port)
            time.sleep(0.3)  # the readiness probe's connection is over before the capture starts
            tcpdump = start_tcpdump(pcap, f"tcp port {port}", folder / f"{name}.tcpdump.out", "lo")
            try:
                fill = {
                    "ca_a": pki.ca_a_cert, "keystore": pki.mp_keystore_healthy,
                    "client_cert": pki.client_good_cert, "client_key": pki.client_good_key,
                }
                argv = [o.format(**fill) for o in options]
                if client == "java":
                    argv = java_command("TlsClient", "127.0.0.1", str(port), *argv)
                    subprocess.run(argv, capture_output=True, timeout=60, check=True)
                else:
                    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                            "backend.lab", "-CAfile", str(pki.ca_a_cert), "-ign_eof", "-quiet", *argv]
                    request = b"GET / HTTP/1.1\r\nHost: backend.lab\r\nConnection: close\r\n\r\n"
                    subprocess.run(argv, input=request, capture_output=True, timeout=60, check=True)
                time.sleep(0.8)
            finally:
                tcpdump.stop()
        finally:
            server.stop()
    return wanted


def build_dense(pcap: Path, connections: int) -> Truth:
    """Write the handshake-dense capture (see the module docstring); return the ground truth."""
    from collector.tls.capture import read_handshakes

    rng = random.Random(15)
    truth = Truth()
    templates = []
    live = live_captures(pcap.parent.parent / "live")
    for fixture in _dense_fixtures() + live:
        result = read_handshakes(fixture)
        conns = _connections(rewrite.resegment(rewrite.segments(fixture), MSS))
        requests = sum(h.certificate_request is not None for h in result.handshakes)
        copies = LIVE_COPIES if fixture in live else 0
        templates.append([copies, result, conns, requests])
    # Half of the connections come from captures with a CertificateRequest, half from the others; the live
    # calls (with a body) are LIVE_COPIES each, the fixtures fill the rest of each half.
    for group in (True, False):
        members = [t for t in templates if bool(t[3]) == group]
        taken = sum(t[0] * len(t[2]) for t in members)
        fixtures = sum(len(t[2]) for t in members if not t[0])
        for template in members:
            template[0] = template[0] or max(1, round((connections / 2 - taken) / fixtures))
    flows: list[list[rewrite.Seg]] = []
    number = 0
    for copies, result, conns, _ in templates:
        truth.add(result, copies)
        for _ in range(copies):
            for conn in conns:
                number += 1
                client_ip = bytes([10, 1 + (number >> 14) % 200, (number >> 6) & 0xFF, (number & 0x3F) + 1])
                flows.append(_relabel(conn, client_ip, 49152 + number % 16000, BACKEND_PORT))
    rng.shuffle(flows)
    _write_interleaved(pcap, flows, rng, open_at_once=DENSE_OPEN_AT_ONCE)
    return truth


def _write_interleaved(
    path: Path, flows: list[list[rewrite.Seg]], rng: random.Random, open_at_once: int
) -> None:
    """Round-robin over up to `open_at_once` flows in random batches, so connections overlap in time as on a
    busy MP; frames are 50 µs apart."""
    cursors = [0] * len(flows)
    waiting = list(range(len(flows) - 1, -1, -1))
    live = [waiting.pop() for _ in range(min(open_at_once, len(waiting)))]
    tick = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE))
        while live:
            slot = rng.randrange(len(live))
            index = live[slot]
            flow, start = flows[index], cursors[index]
            end = min(len(flow), start + rng.randint(1, 6))
            for frame in rewrite.frames_for(flow[start:end], LINKTYPE):
                tick += 50
                seconds, micros = divmod(tick, 1_000_000)
                out.write(struct.pack("<IIII", 1_764_000_000 + seconds, micros, len(frame), len(frame)))
                out.write(frame)
            cursors[index] = end
            if end == len(flow):
                flows[index] = []
                if waiting:
                    live[slot] = waiting.pop()
                else:
                    live.pop(slot)


# -- large shape ---------------------------------------------------------------------------------------------
def build_large(pcap: Path, source: Path, source_truth: Truth, size_mb: int) -> Truth:
    """Copies of the dense capture up to `size_mb`: copy k moves every 10.x.y.z client to (11+k).x.y.z and its
    times k hours later, so no connection repeats (the hardest shape for memory: one handshake per 32 KB)."""
    truth = Truth()
    data = bytearray(source.read_bytes())
    records, pos = [], 24
    while pos + 16 <= len(data):
        records.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    copies = max(1, -(-int(size_mb * 1e6) // (len(data) - 24)))
    if copies > 100:
        raise SystemExit("--large-mb too big for the address rewriting")
    with pcap.open("wb") as out:
        out.write(data[:24])
        for copy in range(copies):
            for pos in records:
                struct.pack_into("<I", data, pos, struct.unpack_from("<I", data, pos)[0] + 3600)
                ip = pos + 16 + LINK_HEADER
                for at in (ip + 12, ip + 16):
                    if data[at] in (10, 10 + copy):
                        data[at] = 11 + copy
            out.write(memoryview(data)[24:])
            truth.handshakes += source_truth.handshakes
            truth.certificate_requests += source_truth.certificate_requests
            truth.empty_client_certificates += source_truth.empty_client_certificates
            truth.alerts.update(source_truth.alerts)
    return truth


# -- running -------------------------------------------------------------------------------------------------
CPU: dict[str, float] = {}  # CPU seconds (user + system) of the last run of each engine
PROCESSES: dict[str, int] = {}  # processes seen in the last run of each engine
INSTRUCTIONS: dict[str, int] = {}  # with --instructions: instructions the last run of each engine executed
COUNTING = {"on": False}  # --instructions: run each engine under callgrind


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, float, int]:
    """stdout, wall seconds and peak RSS (KB) of one child process and the processes it starts (its CPU
    seconds, its children's included, go to CPU[argv[0]]). The RSS is the sum over the process tree of each
    process's peak (VmHWM, read every 5 ms while it runs): a parallel reader's workers count. Not wait4's
    ru_maxrss: it keeps the high-water mark of the forked child before its exec, i.e. of this process, which
    holds the previous engine's output (it showed 452 MB for a 130 MB run after a 1 GB capture's JSON)."""
    name = Path(argv[0]).name
    log = Path(f"/tmp/apigee-bench-callgrind-{os.getpid()}.log")
    if COUNTING["on"]:
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}", *argv]
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    peaks: dict[int, int] = {}
    sampler = threading.Thread(target=_sample_rss, args=(process.pid, peaks), daemon=True)
    sampler.start()
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    sampler.join()
    CPU[name] = usage.ru_utime + usage.ru_stime
    PROCESSES[name] = len(peaks)
    if COUNTING["on"]:
        INSTRUCTIONS[name] = _collected(log.read_text())
        log.unlink()
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"{argv[0]} failed with status {status}")
    return stdout, elapsed, sum(peaks.values())


def _collected(callgrind_log: str) -> int:
    """The instruction count of a callgrind log's "Collected : N" line."""
    for line in callgrind_log.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    raise SystemExit(f"callgrind counted nothing:\n{callgrind_log}")


def _sample_rss(top: int, peaks: dict[int, int]) -> None:
    """Each process's peak RSS (VmHWM, KB) in the tree under `top` (by /proc/PID/task/*/children), read every
    5 ms until `top` is gone."""
    while True:
        pids, seen = [top], 0
        while seen < len(pids):
            try:
                for task in Path(f"/proc/{pids[seen]}/task").iterdir():
                    pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
            seen += 1
        alive = False
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            at = status.find("VmHWM:")
            if at < 0:  # a zombie has no memory left
                continue
            alive = alive or pid == top
            peaks[pid] = max(peaks.get(pid, 0), int(status[at + 6 :].split(None, 1)[0]))
        if not alive:
            return
        time.sleep(0.005)


def _ours_env(tree: Path, source: bool) -> dict[str, str]:
    """The environment ours runs in: the collector package of source tree `tree` first on PYTHONPATH (before
    the editable install), its reader compiled when `tree` holds a build of it, unless `source`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("COLLECTOR_PURE_PYTHON", None)
    return {**env, "COLLECTOR_PURE_PYTHON": "1"} if source else env


def reader_of(tree: Path, source: bool) -> str:
    """`compiled` when ours runs the reader's compiled build (collector/tls/compiled_reader.py), else `source`
    (also for a tree from before there was one)."""
    code = "from collector.tls import compiled_reader as c; print('compiled' if c.in_use() else 'source')"
    done = subprocess.run([sys.executable, "-c", code], env=_ours_env(tree, source), capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "source"


def ours(
    pcap: Path, keys: Path | None, runner: str, tree: Path = ROOT, source: bool = False
) -> tuple[dict[str, object], float, int]:
    """Our reading of `pcap` by the collector package of source tree `tree` (see `_ours_env`), through the
    `collect` console script beside this interpreter or a minimal runner."""
    extra = [str(keys)] if keys else []
    env = _ours_env(tree, source)
    if runner == "cli":
        collect = str(Path(sys.executable).parent / "collect")
        out, seconds, rss = _run([collect, "analyze", "--json", str(pcap), *extra], env)
        handshakes = json.loads(out)["handshakes"]
    else:
        code = (
            "import json,sys; from pathlib import Path; from collector.tls.capture import read_handshakes;"
            "from collector.tls.keylog import load_keylog;"
            "k=load_keylog(Path(sys.argv[2])) if len(sys.argv)>2 else None;"
            "r=read_handshakes(Path(sys.argv[1]), k);"
            "print(json.dumps([h.to_json() for h in r.handshakes]))"
        )
        out, seconds, rss = _run([sys.executable, "-c", code, str(pcap), *extra], env)
        handshakes = json.loads(out)
    return _count_ours(handshakes), seconds, rss


def _count_ours(handshakes: list[dict]) -> dict[str, object]:
    alerts: collections.Counter = collections.Counter()
    for h in handshakes:
        alerts.update(a["code"] for a in h["alerts"])
    return {
        "handshakes": len(handshakes),
        "certificate_requests": sum(h["certificate_request"] is not None for h in handshakes),
        "empty_client_certificates": sum(
            bool(h["client_certificate"]) and not h["client_certificate"]["sent"] for h in handshakes
        ),
        "alerts": {str(k): v for k, v in sorted(alerts.items())},
    }


def tshark(pcap: Path, keys: Path | None, backend_port: int | None) -> tuple[dict[str, object], float, int]:
    argv = ["tshark", "-n", "-o", "tcp.reassemble_out_of_order:TRUE"]
    argv += ["-o", f"tls.keylog_file:{keys}"] if keys else []
    argv += ["-d", f"tcp.port=={backend_port},tls"] if backend_port else []
    argv += ["-r", str(pcap), "-Y", "tls.handshake.type in {1,2,11,13} or tls.alert_message"]
    argv += ["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for field in ("tcp.stream", "tls.handshake.type", "tls.handshake.certificates_length"):
        argv += ["-e", field]
    argv += ["-e", "tls.alert_message.desc"]
    out, seconds, rss = _run(argv)
    hellos, requests, empty = 0, 0, 0
    alerts: collections.Counter = collections.Counter()
    for line in out.splitlines():
        _, types, lengths, descs = line.split("|")
        kinds = types.split(",") if types else []
        hellos += kinds.count("1")
        requests += kinds.count("13")
        empty += lengths.split(",").count("0") if lengths else 0
        alerts.update(int(d) for d in descs.split(",") if d)
    return (
        {
            "client_hellos": hellos,
            "certificate_requests": requests,
            "empty_client_certificates": empty,
            "alerts": {str(k): v for k, v in sorted(alerts.items())},
        },
        seconds,
        rss,
    )


# -- cache ---------------------------------------------------------------------------------------------------
def _recipe(shape: str, args: argparse.Namespace) -> str:
    """What a cached capture was built from: the builder version, its parameters and the fixtures' bytes."""
    digest = hashlib.sha256(_BUILD_VERSION.encode())
    params = {"dense": [DENSE_CONNECTIONS, DENSE_OPEN_AT_ONCE], "bulk": [args.size_mb, args.copies]}
    params["large"] = [args.large_mb, params["dense"]]
    digest.update(json.dumps([shape, params[shape]]).encode())
    for path in sorted(CAPTURES.rglob("*")):
        if path.suffix in (".pcap", ".keys"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def prepared(shape: str, args: argparse.Namespace) -> tuple[Path, Path | None, dict]:
    """The shape's capture, key log (None: no key log) and ground truth, built now unless cached."""
    folder = args.work / shape
    pcap, keys, truth_file = folder / "capture.pcap", folder / "capture.keys", folder / "truth.json"
    recipe = _recipe(shape, args)
    cached = json.loads(truth_file.read_text()) if truth_file.exists() else {}
    if args.rebuild or cached.get("recipe") != recipe or not pcap.exists():
        if shape == "large":  # built from the dense one
            prepared("dense", args)
        # Build in a child: a fork of a process holding the whole capture would inflate the engines' peak RSS.
        started = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "bench.analyze", "--build-only", shape, "--work", str(args.work)]
        argv += ["--size-mb", str(args.size_mb), "--copies", str(args.copies)]
        argv += ["--large-mb", str(args.large_mb)]
        subprocess.run(argv, check=True, cwd=ROOT)
        built = json.loads(truth_file.read_text())
        built["recipe"] = recipe
        truth_file.write_text(json.dumps(built))
        print(f"built {pcap} in {time.perf_counter() - started:.1f}s")
    truth = json.loads(truth_file.read_text())
    return pcap, (keys if keys.exists() else None), truth


def _build_only(shape: str, args: argparse.Namespace) -> None:
    folder = args.work / shape
    pcap, keys = folder / "capture.pcap", folder / "capture.keys"
    if shape == "dense":
        truth = build_dense(pcap, DENSE_CONNECTIONS)
    elif shape == "bulk":
        truth = build_bulk(pcap, keys, args.size_mb, args.copies)
    else:
        dense_truth = json.loads((args.work / "dense" / "truth.json").read_text())
        source_truth = Truth(**{k: v for k, v in dense_truth.items() if k not in ("alerts", "recipe")})
        source_truth.alerts.update({int(k): v for k, v in dense_truth["alerts"].items()})
        truth = build_large(pcap, args.work / "dense" / "capture.pcap", source_truth, args.large_mb)
    (folder / "truth.json").write_text(json.dumps(truth.to_json()))


def measure(shape: str, args: argparse.Namespace) -> bool:
    """Run both engines (ours from this tree, and from --baseline-tree when given) on one shape and print the
    comparison; True when the counts agree."""
    pcap, keys, truth = prepared(shape, args)
    packets = _count_packets(pcap)
    if args.format == "pcapng":
        pcap = _as_pcapng(pcap)
    size = pcap.stat().st_size
    print(f"\n== {shape} ({args.format}): {size / 1e6:.1f} MB, {packets} packets,"
          f" key log: {'yes' if keys else 'no'}")
    print(f"   ground truth: {_plain(truth)}")
    comparable = ("certificate_requests", "empty_client_certificates", "alerts")
    trees = [("ours", ROOT, False)]
    trees += [("source", ROOT, True)] if args.also_source else []
    trees += [("baseline", args.baseline_tree, False)] if args.baseline_tree else []
    readers = {name: reader_of(tree, source) for name, tree, source in trees}
    for _, tree, _ in trees:
        byte_compile(tree)
    with_tshark = shape != "large" or args.with_tshark
    agree = True
    # Each engine runs --repeat times, in rounds (ours, baseline, tshark; then tshark first...) so that the
    # machine's drift falls on all of them alike; each is reported by its fastest run (the least disturbed, as
    # timeit does) with the median beside it, and the ratio also round by round: the runs of one round are
    # seconds apart, so their ratio is the one this machine's drift (2x within an hour) disturbs least.
    runs: dict[str, list[tuple[float, float, int, int]]] = {}  # name -> (wall, CPU, RSS KB, instructions)
    found_by: dict[str, dict[str, object]] = {}

    def run_ours() -> None:
        nonlocal agree
        for name, tree, source in trees:
            found, seconds, rss = ours(pcap, keys, args.runner, tree, source)
            runs.setdefault(name, []).append((seconds, _cpu_of_ours(), rss, _instructions_of_ours()))
            found_by[name] = found
            agree = agree and all(found[k] == truth[k] for k in comparable)
            agree = agree and found["handshakes"] == truth["handshakes"]

    def run_tshark() -> None:
        nonlocal agree
        theirs, their_seconds, their_rss = tshark(pcap, keys, BACKEND_PORT if shape == "dense" else None)
        measured = (their_seconds, CPU["tshark"], their_rss, INSTRUCTIONS.get("tshark", 0))
        runs.setdefault("tshark", []).append(measured)
        found_by["tshark"] = theirs
        agree = agree and all(theirs[k] == truth[k] for k in comparable)

    for round_number in range(args.repeat):
        order = [run_ours, run_tshark] if with_tshark else [run_ours]
        for step in order if round_number % 2 == 0 else reversed(order):
            step()
    best = {name: min(measured, key=lambda run: run[1]) for name, measured in runs.items()}
    for name, (seconds, cpu, rss, _) in best.items():
        label = name if name == "tshark" else f"{name} ({args.runner}, {readers[name]})"
        median = statistics.median(run[1] for run in runs[name])
        print(
            f"   {label:26} {seconds:6.2f}s {size / 1e6 / seconds:7.1f} MB/s (CPU {cpu:5.2f}s"
            + (f", median of {args.repeat} {median:5.2f}s" if args.repeat > 1 else "")
            + f")  peak RSS {rss / 1024:6.1f} MB"
            + ("" if name == "tshark" else f" ({_processes_of_ours()} process(es), summed)")
            + f"  {found_by[name]}"
        )
    if with_tshark:
        their_seconds, their_cpu, _, their_instructions = best["tshark"]
        for name, _, _ in trees:
            seconds, cpu, _, instructions = best[name]
            if COUNTING["on"]:  # callgrind slows the engines unequally: their time ratio means nothing
                print(
                    f"   instructions tshark / {name}: {their_instructions / instructions:.2f}x"
                    f" ({name} {instructions / 1e9:.3f} G, tshark {their_instructions / 1e9:.3f} G;"
                    " callgrind's times above are not comparable)"
                )
                continue
            print(
                f"   ratio tshark / {name}: {their_seconds / seconds:.2f}x wall, {their_cpu / cpu:.2f}x CPU"
                " (tshark uses one core; CPU is the steadier figure on a loaded machine)"
            )
            if args.repeat > 1:
                paired = sorted(t[1] / o[1] for o, t in zip(runs[name], runs["tshark"], strict=True))
                print(f"   ratio tshark / {name} round by round, CPU: median {statistics.median(paired):.2f}x"
                      f" ({', '.join(f'{r:.2f}' for r in paired)})")
    print("   counts agree with the ground truth" if agree else "   COUNTS DIFFER")
    return agree


def _as_pcapng(pcap: Path) -> Path:
    """The same packets as pcapng (what Wireshark saves), converted by editcap once per built capture."""
    converted = pcap.with_suffix(".pcapng")
    if not converted.exists() or converted.stat().st_mtime < pcap.stat().st_mtime:
        partial = converted.with_suffix(".partial")
        subprocess.run(["editcap", "-F", "pcapng", str(pcap), str(partial)], check=True)
        partial.replace(converted)
    return converted


def _count_packets(pcap: Path) -> int:
    """Packet records of a little-endian classic pcap (what the builders write), header by header."""
    count, pos, size = 0, 24, pcap.stat().st_size
    with pcap.open("rb") as stream:
        while pos + 16 <= size:
            stream.seek(pos + 8)
            pos += 16 + int.from_bytes(stream.read(4), "little")
            count += 1
    return count


def _cpu_of_ours() -> float:
    return CPU.get("collect", CPU.get(Path(sys.executable).name, 0.0))


def _instructions_of_ours() -> int:
    return INSTRUCTIONS.get("collect", INSTRUCTIONS.get(Path(sys.executable).name, 0))


def _processes_of_ours() -> int:
    return PROCESSES.get("collect", PROCESSES.get(Path(sys.executable).name, 1))


def _plain(truth: dict) -> dict:
    return {k: v for k, v in truth.items() if k != "recipe"}


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a count of runs: {text!r}")
    return int(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", nargs="+", choices=("dense", "bulk", "large"), default=["dense", "bulk"])
    parser.add_argument("--size-mb", type=int, default=320, help="size of the bulk capture")
    parser.add_argument("--copies", type=int, default=150, help="copies of each scenario in the bulk capture")
    parser.add_argument("--large-mb", type=int, default=1024, help="size of the large capture")
    parser.add_argument("--work", type=Path, default=Path("/tmp/apigee-bench"))
    parser.add_argument("--runner", choices=("cli", "reader"), default="cli")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap", help="the file both engines"
                        " read: pcapng is what Wireshark saves (the same packets, converted with editcap)")
    parser.add_argument("--baseline-tree", type=Path, help="also run ours from this source tree (e.g. an"
                        " export of main: git archive main | tar -x -C DIR), in the same run")
    parser.add_argument("--also-source", action="store_true", help="also run ours with its reader from"
                        " source (COLLECTOR_PURE_PYTHON=1), beside the compiled build, in the same run")
    parser.add_argument("--repeat", type=_at_least_one, default=1, help="runs of each engine, in rounds;"
                        " each is reported by its fastest (this machine's speed moves 2x within an hour)")
    parser.add_argument("--rebuild", action="store_true", help="build the captures even when cached")
    parser.add_argument("--with-tshark", action="store_true", help="run tshark on the large capture too")
    parser.add_argument("--instructions", action="store_true", help="run each engine under valgrind's"
                        " callgrind and compare instruction counts, which the machine's load does not move"
                        " (dense: ~10 min)")
    parser.add_argument("--build-only", choices=("dense", "bulk", "large"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    COUNTING["on"] = args.instructions
    if args.build_only:
        _build_only(args.build_only, args)
        return 0
    agree = [measure(shape, args) for shape in args.shape]
    return 0 if all(agree) else 1


if __name__ == "__main__":
    sys.exit(main())
