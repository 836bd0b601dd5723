"""`collect analyze` as a library call: files -> evidence -> diagnosis, and the JSON DESIGN.md documents."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.inputs import CaptureProgress, load_evidence
from collector.diagnosis.verdict import Diagnosis
from collector.tls.handshake import HANDSHAKE_JSON, Handshake

_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


@dataclass(frozen=True)
class Analysis:
    """The handshakes found, the verdict, and the evidence both came from."""

    handshakes: tuple[Handshake, ...]
    diagnosis: Diagnosis
    evidence: Evidence

    def to_json(self) -> dict[str, object]:
        """DESIGN.md's `{"handshakes": [...], "diagnosis": {...}}`, plus the connection attempts that carried
        no byte, the targets known from a resolution, the input notes and sources."""
        return {"handshakes": [h.to_json() for h in self.handshakes], **self._rest_json()}

    def json_chunks(self) -> Iterator[str]:
        """The text of ``json.dumps(self.to_json(), indent=2)``, piece by piece: one handshake's dict exists
        at a time (a capture of a million connections is printed in bounded memory), and the parts repeated
        from connection to connection (the chain, the offer, the CA names) are indented once."""
        fragments: dict[tuple[int, object], str] = {}
        yield '{\n  "handshakes": '
        if not self.handshakes:
            yield "[]"
        else:
            separator = "[\n    "
            repeated: dict[tuple[object, ...], tuple[tuple[object, ...], str]] = {}
            for handshake in self.handshakes:
                yield separator
                yield "".join(_handshake_text(handshake, fragments, repeated))
                separator = ",\n    "
            yield "\n  ]"
        for key, value in self._rest_json().items():
            yield f",\n  {_string(key)}: "
            yield from _indented(value, 1, fragments)
        yield "\n}"

    def _rest_json(self) -> dict[str, object]:
        return {
            "diagnosis": self.diagnosis.to_json(),
            "connection_attempts": [a.to_json() for a in self.evidence.connection_attempts],
            "backend_targets": [t.to_json() for t in self.evidence.targets],
            "notes": list(self.evidence.notes),
            "sources": list(self.evidence.sources),
            "truststore": [c.to_json() for c in self.evidence.truststore],
        }


# The handshake fields whose JSON repeats from connection to connection, each with the values its JSON is
# made of (`Handshake.to_json` and the part's own to_json read nothing else). The reader shares these tuples
# and strings between handshakes, so the text is looked up by their identity: no repr, no walk.
_REPEATED_PARTS: dict[str, Callable[[Handshake], tuple[object, ...]]] = {
    "server_chain": lambda h: (h.server_chain,),
    "server_chain_der": lambda h: (h.server_chain_der,),
    "certificate_request": lambda h: (
        (h.certificate_request.ca_names, h.certificate_request.signature_algorithms)
        if h.certificate_request is not None else ()
    ),
    "client_certificate": lambda h: (
        (h.client_certificate.sent, h.client_certificate.chain) if h.client_certificate is not None else ()
    ),
    "client_hello": lambda h: (
        (h.client_hello.legacy_version, h.client_hello.supported_versions, h.client_hello.cipher_suites)
        if h.client_hello is not None else ()
    ),
}


# Each field of a handshake as `json_chunks` writes it: the text before its value (separator, indentation,
# key), then how to make the value and, for a repeated part, the values its text is made of.
_FIELDS = tuple(
    (f"{',' if index else '{'}\n      {_string(key)}: ", key, part, _REPEATED_PARTS.get(key))
    for index, (key, part) in enumerate(HANDSHAKE_JSON.items())
)


def _handshake_text(
    handshake: Handshake,
    fragments: dict[tuple[int, object], str],
    repeated: dict[tuple[object, ...], tuple[tuple[object, ...], str]],
) -> list[str]:
    """The pieces of ``_indented(handshake.to_json(), 2)``; a repeated part is made and written only the first
    time its values are seen."""
    out = []
    for before, key, part, made_of in _FIELDS:
        out.append(before)
        if made_of is not None:
            parts = made_of(handshake)
            # by identity: an entry keeps its parts alive, so no other object can have their ids meanwhile
            known = (key, *map(id, parts))
            entry = repeated.get(known)
            if entry is None:
                entry = (parts, "".join(_indented(part(handshake), 3, fragments)))
                if len(repeated) >= _MAX_FRAGMENTS:
                    repeated.clear()
                repeated[known] = entry
            out.append(entry[1])
            continue
        value = part(handshake)
        if value is None:  # the common scalars inline: most fields are one, and a generator each costs
            out.append("null")
        elif type(value) is str:
            out.append(_string(value))
        else:
            out.extend(_indented(value, 3, fragments))
    out.append("\n    }")
    return out


_MAX_FRAGMENTS = 4096  # distinct indented values remembered (a chain, an offer); the rest are indented anew


def _indented(value: object, level: int, fragments: dict[tuple[int, object], str]) -> Iterator[str]:
    """`value` as ``json.dumps(..., indent=2)`` writes it at nesting `level`. Dicts and lists down to a
    handshake's fields are walked here; deeper ones are indented by the json module once per distinct value
    (keyed by their repr, which C writes fast and which is equal only for values json writes equally, or for a
    long flat list by its items)."""
    if type(value) is str:
        yield _string(value)
        return
    if level < 3 and isinstance(value, dict) and value and all(type(k) is str for k in value):
        separator = "{\n" + "  " * (level + 1)
        for key, item in value.items():
            yield f"{separator}{_string(key)}: "
            yield from _indented(item, level + 1, fragments)
            separator = ",\n" + "  " * (level + 1)
        yield "\n" + "  " * level + "}"
        return
    if level < 3 and isinstance(value, list | tuple) and value:
        separator = "[\n" + "  " * (level + 1)
        for item in value:
            yield separator
            yield from _indented(item, level + 1, fragments)
            separator = ",\n" + "  " * (level + 1)
        yield "\n" + "  " * level + "]"
        return
    if value is None:
        yield "null"
        return
    if not value and isinstance(value, list | tuple):  # no alerts, no notes: most handshakes
        yield "[]"
        return
    if not isinstance(value, dict | list | tuple) or not value:  # a number, a bool or {}
        yield json.dumps(value)
        return
    flat = type(value) is list and all(type(item) is str or type(item) is int for item in value)
    if flat and sum(len(item) if type(item) is str else 8 for item in value) < 512:
        # frames, notes: new on every connection, short and flat
        inner = "\n" + "  " * (level + 1)
        items = (_string(item) if type(item) is str else str(item) for item in value)
        yield f"[{inner}{(',' + inner).join(items)}\n{'  ' * level}]"
        return
    # a long flat list (the chain's base64) is keyed by its items: a str remembers its hash
    known = (level, tuple(value)) if flat else (level, repr(value))
    fragment = fragments.get(known)
    if fragment is None:
        # json.dumps(indent=2) escapes newlines inside strings, so every raw newline is an indentation point
        fragment = json.dumps(value, indent=2).replace("\n", "\n" + "  " * level)
        if len(fragments) >= _MAX_FRAGMENTS:
            fragments.clear()
        fragments[known] = fragment
    yield fragment


def analyze_evidence(evidence: Evidence) -> Analysis:
    """Judge evidence already loaded (a live run builds it from the bundle it is writing)."""
    return Analysis(handshakes=evidence.handshakes, diagnosis=diagnose(evidence), evidence=evidence)


def analyze_paths(
    paths: Sequence[Path], truststores: Sequence[Path] = (), progress: CaptureProgress | None = None
) -> Analysis:
    """Sniff and read every file (and the MP truststore's certificate files), then judge; raises
    InputError/CaptureFormatError naming a bad file. `progress` hears how far each capture's reading is."""
    return analyze_evidence(load_evidence(paths, truststores, progress))
