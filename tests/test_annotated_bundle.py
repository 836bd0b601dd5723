"""The bundle's `analysis/BACKEND.pcapng`, end to end through `collect package --from`: a raw collection with
the MP's and the backend's real capture of one failing handshake becomes a bundle whose annotated capture
tshark reads (host interfaces, comments on the cited frames), whose manifest checksums it, whose reports point
at it, and which `collect analyze` reads back to the bundle's own cause."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from collector import layout
from collector.run.raw_collection import RAW_FORMAT, RUN_RECORD
from tests.tls.rewrite import backend_side_copy

CAPTURE = Path(__file__).parent / "fixtures" / "captures" / "ca-mismatch-java-tls12.pcap"
MP = "mp1.dc-1.example"


def _raw_collection(root: Path) -> Path:
    hosts = [(MP, "message-processor", "127.0.0.1"), ("backend", "backend", "127.0.0.21")]
    record = {"format": RAW_FORMAT, "run_id": "20261127T101500Z-abc123", "org": "acme", "env": "prod",
              "proxy": "payments", "backend_port": 35545, "message_ids": [], "reproduction": None,
              "hosts": [{"name": name, "role": role, "address": address, "peers": [],
                         "steps": [{"step": "fetch-capture", "status": "ok", "reason": None, "message": "",
                                    "seconds": 1}]}
                        for name, role, address in hosts]}
    root.mkdir(parents=True)
    (root / RUN_RECORD).write_text(json.dumps(record))
    for name, _role, _address in hosts:
        (root / layout.host_dir(name)).mkdir(parents=True)
    shutil.copyfile(CAPTURE, root / layout.host_file(MP, layout.HOST_CAPTURE))
    backend = backend_side_copy(CAPTURE, root)
    backend.replace(root / layout.host_file("backend", layout.HOST_CAPTURE))
    return root


def _collect(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")} | {"HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)


def test_the_bundle_holds_one_annotated_capture_per_backend(tmp_path: Path) -> None:
    # Given a raw collection holding the MP's pcap and the backend's pcapng of one failing handshake
    raw = _raw_collection(tmp_path / "raw")
    out = tmp_path / "out"
    # When it is packaged into a bundle (no management API)
    done = _collect("package", "--from", str(raw), "--no-api", "--no-probe", "--json", "--keep-directory",
                    "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    bundle = Path(result["bundle"])
    directory = out / bundle.name.removesuffix(".tar.gz")
    diagnosis = json.loads((directory / layout.ANALYSIS_DIAGNOSIS).read_text())
    server = diagnosis["backend"].split(" ")[0]
    rel = layout.annotated_capture(server)
    assert rel == "analysis/127.0.0.21_35545.pcapng"
    annotated = directory / rel
    # Then tshark shows each host as its own interface, and the cited frames commented on both copies
    fields = subprocess.run(["tshark", "-r", str(annotated), "-T", "fields", "-e", "frame.interface_name",
                             "-e", "frame.comment"], capture_output=True, text=True, timeout=60,
                            check=True).stdout.splitlines()
    rows = [line.split("\t") for line in fields]
    assert {r[0] for r in rows} == {MP, "backend"}
    for host in (MP, "backend"):
        comments = [r[1] for r in rows if r[0] == host and r[1]]
        assert any(c.startswith("CertificateRequest: acceptable CA names CN=Lab CA A") for c in comments)
        assert "empty client Certificate: the message processor sent no certificate" in comments
        assert "fatal alert bad_certificate (42) from the backend" in comments
    # the manifest checksums it and `collect verify` agrees; the reports point at it
    manifest = json.loads((directory / layout.MANIFEST).read_text())
    assert rel in {f["path"] for f in manifest["files"]}
    assert _collect("verify", str(bundle), cwd=tmp_path).returncode == 0
    assert f"`{rel}`" in (directory / layout.SUMMARY).read_text()
    assert f"<code>{rel}</code>" in (directory / layout.REPORT).read_text()
    with tarfile.open(bundle) as tar:
        assert any(m.name.endswith(rel) and m.mode == 0o600 for m in tar.getmembers())
    # and `collect analyze` of the annotated capture names the bundle's cause
    analyzed = _collect("analyze", str(annotated), "--json", cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stderr
    cause = json.loads(analyzed.stdout)["diagnosis"]["cause"]
    assert cause == diagnosis["cause"] == result["diagnosis"]["cause"]
    # and the bundle analysis itself still reads the host captures only (no handshake counted twice)
    again = json.loads(_collect("analyze", str(bundle), "--json", cwd=tmp_path).stdout)
    assert again["diagnosis"] == json.loads((directory / layout.ANALYSIS_DIAGNOSIS).read_text())
