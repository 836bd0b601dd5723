"""`collect analyze` as a library call: files -> evidence -> diagnosis, and the JSON DESIGN.md documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.inputs import load_evidence
from collector.diagnosis.verdict import Diagnosis
from collector.tls.handshake import Handshake


@dataclass(frozen=True)
class Analysis:
    """The handshakes found, the verdict, and the evidence both came from."""

    handshakes: tuple[Handshake, ...]
    diagnosis: Diagnosis
    evidence: Evidence

    def to_json(self) -> dict[str, object]:
        """DESIGN.md's `{"handshakes": [...], "diagnosis": {...}}`, plus the connection attempts that carried
        no byte, the targets known from a resolution, the input notes and sources."""
        return {
            "handshakes": [h.to_json() for h in self.handshakes],
            "diagnosis": self.diagnosis.to_json(),
            "connection_attempts": [a.to_json() for a in self.evidence.connection_attempts],
            "backend_targets": [t.to_json() for t in self.evidence.targets],
            "notes": list(self.evidence.notes),
            "sources": list(self.evidence.sources),
            "truststore": [c.to_json() for c in self.evidence.truststore],
        }


def analyze_evidence(evidence: Evidence) -> Analysis:
    """Judge evidence already loaded (a live run builds it from the bundle it is writing)."""
    return Analysis(handshakes=evidence.handshakes, diagnosis=diagnose(evidence), evidence=evidence)


def analyze_paths(paths: Sequence[Path], truststores: Sequence[Path] = ()) -> Analysis:
    """Sniff and read every file (and the MP truststore's certificate files), then judge; raises
    InputError/CaptureFormatError naming a bad file."""
    return analyze_evidence(load_evidence(paths, truststores))
