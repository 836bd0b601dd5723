"""Benchmark: our capture reader (`collect analyze --json`) against tshark on one large capture, same facts.

How to run (from the repository root, after scripts/setup.sh; takes a few minutes, needs ~1 GB of disk
in /tmp):

    .venv/bin/python -m bench.analyze [--size-mb 320] [--copies 150] [--work /tmp/apigee-bench]
                                      [--runner cli|reader]

What it does:
1. Builds bench.pcap (>= --size-mb MB) from the real fixtures in tests/fixtures/captures: every IPv4 scenario
   capture re-segmented at MSS 1448 and replicated --copies times with rewritten client addresses/ports, plus
   bulk TLS 1.2 flows (healthy handshake + 16 KB application-data records, mostly server -> client) up to the
   size; connections are interleaved. All TLS 1.3 key logs are merged into bench.keys (given to both engines).
2. Runs, in the same process run and one after the other, `collect analyze --json bench.pcap bench.keys` (or
   with --runner reader, a minimal `read_handshakes` runner) and `tshark -o tcp.reassemble_out_of_order:TRUE
   -o tls.keylog_file:bench.keys -Y "tls.handshake or tls.alert_message" -T fields ...` extracting the same
   facts.
3. Checks both found the same counts: CertificateRequests, empty client Certificates, plaintext/decrypted
   alerts by code, and compares them with the ground truth from building the file.
4. Prints wall time, throughput (MB/s, packets/s), the ratio tshark/ours and each engine's peak RSS.
Targets: ours >= 3x tshark's throughput and < 200 MB peak RSS. Not part of the test suite
(timings are not tests).

Results here (2 vCPUs shared with other jobs, load average ~6, so +-50 %; 341.6 MB, 299 850 packets, 3 486
handshakes): `collect analyze --json` 6.1-9.4 s (36-56 MB/s), peak RSS 88 MB; tshark 4.0.17 74-159 s
(2-4.6 MB/s), peak RSS 684 MB; ratio 7.8x-26x; all counts equal to each other and to the ground truth. The
reader alone (`--runner reader`) takes about 3.1 s (110 MB/s, ~100 k packets/s) and 55 MB.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from tests.tls import rewrite

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "fixtures" / "captures"
MSS = 1448


@dataclasses.dataclass
class Truth:
    """What the built capture holds by construction (counted from the per-fixture reading times copies)."""

    handshakes: int = 0
    certificate_requests: int = 0
    empty_client_certificates: int = 0
    alerts: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def _fixtures() -> list[Path]:
    """Plain IPv4 scenario captures (the IPv6 one is left out: the rewriter renumbers IPv4 addresses)."""
    return sorted(p for p in CAPTURES.glob("*.pcap") if "ipv6" not in p.name)


def _relabel(segs: list[rewrite.Seg], client_ip: bytes, client_port: int) -> list[rewrite.Seg]:
    client = (segs[0].src, segs[0].sport)
    out = []
    for seg in segs:
        if seg.other is not None:
            continue
        if (seg.src, seg.sport) == client:
            out.append(dataclasses.replace(seg, src=client_ip, sport=client_port))
        else:
            out.append(dataclasses.replace(seg, dst=client_ip, dport=client_port))
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


def build(work: Path, size_mb: int, copies: int) -> tuple[Path, Path, Truth]:
    """Write bench.pcap and bench.keys; return the ground truth."""
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
        handshake = read_handshakes(fixture, keylog).handshakes[0]
        for copy in range(copies):
            port += 1
            # client ports from the dynamic range: tshark picks dissectors by port (2099 would be TPKT)
            flows.append(
                _relabel(template, bytes([10, 1 + copy // 250, copy % 250, 1]), 49152 + port % 16000)
            )
            truth.handshakes += 1
            truth.certificate_requests += handshake.certificate_request is not None
            truth.empty_client_certificates += bool(
                handshake.client_certificate and not handshake.client_certificate.sent
            )
            truth.alerts.update(a.code for a in handshake.alerts)
    handshake_bytes = sum(len(s.payload) + 54 for f in flows for s in f)
    healthy = rewrite.segments(CAPTURES / "healthy-openssl-tls12.pcap")
    bulk_needed = max(0.0, size_mb * 1e6 - handshake_bytes)
    bulk_flows = max(1, int(bulk_needed // 8e6))
    healthy_handshake = read_handshakes(CAPTURES / "healthy-openssl-tls12.pcap").handshakes[0]
    for number in range(bulk_flows):
        flows.append(
            _bulk_flow(
                _relabel(healthy, bytes([10, 200, number // 250, number % 250 + 1]), 40000),
                bulk_needed / bulk_flows / 1e6,
                rng,
            )
        )
        truth.handshakes += 1
        truth.certificate_requests += 1
        truth.alerts.update(a.code for a in healthy_handshake.alerts)
    pcap, keys_path = work / "bench.pcap", work / "bench.keys"
    keys_path.write_text("".join(keys_text))
    _write_interleaved(pcap, flows, rng)
    return pcap, keys_path, truth


def _write_interleaved(path: Path, flows: list[list[rewrite.Seg]], rng: random.Random) -> None:
    """Round-robin over flows in random batches, so connections overlap in time as on a busy MP."""
    import struct

    cursors = [0] * len(flows)
    live = list(range(len(flows)))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        while live:
            index = rng.choice(live)
            flow, start = flows[index], cursors[index]
            end = min(len(flow), start + rng.randint(1, 6))
            for frame in rewrite.frames_for(flow[start:end]):
                out.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)
            cursors[index] = end
            if end == len(flow):
                live.remove(index)
                flows[index] = []


def _run(argv: list[str]) -> tuple[str, float, int]:
    """stdout, wall seconds and peak RSS (KB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"{argv[0]} failed with status {status}")
    return stdout, elapsed, usage.ru_maxrss


def ours(pcap: Path, keys: Path, runner: str) -> tuple[dict[str, object], float, int]:
    if runner == "cli":
        out, seconds, rss = _run(
            [str(ROOT / ".venv" / "bin" / "collect"), "analyze", "--json", str(pcap), str(keys)]
        )
        handshakes = json.loads(out)["handshakes"]
    else:
        code = (
            "import json,sys; from pathlib import Path; from collector.tls.capture import read_handshakes;"
            "from collector.tls.keylog import load_keylog;"
            "r=read_handshakes(Path(sys.argv[1]), load_keylog(Path(sys.argv[2])));"
            "print(json.dumps([h.to_json() for h in r.handshakes]))"
        )
        out, seconds, rss = _run([sys.executable, "-c", code, str(pcap), str(keys)])
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
        "alerts": dict(sorted(alerts.items())),
    }


def tshark(pcap: Path, keys: Path) -> tuple[dict[str, object], float, int]:
    argv = [
        "tshark",
        "-n",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-o",
        f"tls.keylog_file:{keys}",
        "-r",
        str(pcap),
        "-Y",
        "tls.handshake or tls.alert_message",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-e",
        "tcp.stream",
        "-e",
        "tcp.srcport",
        "-e",
        "tls.handshake.type",
        "-e",
        "tls.handshake.certificates_length",
        "-e",
        "tls.alert_message.desc",
    ]
    out, seconds, rss = _run(argv)
    streams, requests, empty = set(), 0, 0
    alerts: collections.Counter = collections.Counter()
    for line in out.splitlines():
        stream, _, types, lengths, descs = line.split("|")
        kinds = types.split(",") if types else []
        if "1" in kinds:
            streams.add(stream)
        requests += kinds.count("13")
        empty += lengths.split(",").count("0") if lengths else 0
        alerts.update(int(d) for d in descs.split(",") if d)
    return (
        {
            "handshakes": len(streams),
            "certificate_requests": requests,
            "empty_client_certificates": empty,
            "alerts": dict(sorted(alerts.items())),
        },
        seconds,
        rss,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=320)
    parser.add_argument("--copies", type=int, default=150)
    parser.add_argument("--work", type=Path, default=Path("/tmp/apigee-bench"))
    parser.add_argument("--runner", choices=("cli", "reader"), default="cli")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing bench.pcap in --work")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    truth_file = args.work / "truth.json"
    pcap, keys = args.work / "bench.pcap", args.work / "bench.keys"
    if args.build_only:
        started = time.perf_counter()
        pcap, keys, built = build(args.work, args.size_mb, args.copies)
        truth_file.write_text(
            json.dumps(
                {
                    "handshakes": built.handshakes,
                    "certificate_requests": built.certificate_requests,
                    "empty_client_certificates": built.empty_client_certificates,
                    "alerts": {str(k): v for k, v in sorted(built.alerts.items())},
                }
            )
        )
        print(f"built {pcap} in {time.perf_counter() - started:.1f}s")
        return 0
    if not (args.reuse and truth_file.exists()):
        # Build in a child: a fork of a process holding the whole capture would inflate the engines' peak RSS.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--build-only",
                "--size-mb",
                str(args.size_mb),
                "--copies",
                str(args.copies),
                "--work",
                str(args.work),
            ],
            check=True,
        )
    truth = json.loads(truth_file.read_text())
    size = pcap.stat().st_size
    print(f"capture: {size / 1e6:.1f} MB; ground truth: {truth}")
    mine, my_seconds, my_rss = ours(pcap, keys, args.runner)
    theirs, their_seconds, their_rss = tshark(pcap, keys)
    mine["alerts"] = {str(k): v for k, v in mine["alerts"].items()}  # type: ignore[union-attr]
    theirs["alerts"] = {str(k): v for k, v in theirs["alerts"].items()}  # type: ignore[union-attr]
    print(
        f"ours ({args.runner}): {my_seconds:6.2f}s {size / 1e6 / my_seconds:7.1f} MB/s"
        f"  peak RSS {my_rss / 1024:6.1f} MB"
        f"  {mine}"
    )
    print(
        f"tshark:       {their_seconds:6.2f}s {size / 1e6 / their_seconds:7.1f} MB/s  peak RSS "
        f"{their_rss / 1024:6.1f} MB  {theirs}"
    )
    print(f"throughput ratio (tshark time / our time): {their_seconds / my_seconds:.2f}x")
    comparable = ("certificate_requests", "empty_client_certificates", "alerts")
    agree = (
        all(mine[k] == theirs[k] == truth[k] for k in comparable)
        and mine["handshakes"] == truth["handshakes"]
    )
    print("counts agree with each other and with the ground truth" if agree else "COUNTS DIFFER")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
