"""Evidence values: Edge documents become key entries; parts combine in order."""

from __future__ import annotations

import json

import pytest

from collector.diagnosis.evidence import Evidence, combine_evidence, keystore_evidence_from_document
from tests.diagnosis.conftest import EDGE


def _doc(name: str) -> dict:
    return json.loads((EDGE / name).read_text())


DOCUMENTS = {
    "keystore with aliases": ("keystore-spec-example.json",
                              [("MyTestKeystore", "myTestAlias", True, 0, "keystore")]),
    "older keystore with keys only": ("keystore-old-format.json",
                                      [("freetrial", "freetrial", True, 0, "keystore")]),
    "empty keystore": ("keystore-no-key.json", [("myKeystore", None, False, 0, "keystore")]),
    "alias with key": ("alias-ca-mismatch.json", [(None, "myKey", True, 1, "alias")]),
    "alias without key": ("alias-cert-only.json", [(None, "myKey", False, 1, "alias")]),
    "cert document": ("cert-spec-example.json", [(None, None, None, 1, "cert")]),
}


@pytest.mark.parametrize("name,expected", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_edge_documents_become_key_entries(name: str, expected: list) -> None:
    # Given an Edge document, When turned into evidence
    entries = keystore_evidence_from_document(_doc(name), name)
    # Then each entry says keystore, alias, whether it has a key, and its chain
    assert [(e.keystore, e.alias, e.has_key, len(e.chain), e.document) for e in entries] == expected
    assert all(e.source == name for e in entries)


def test_keystore_hint_names_alias_documents() -> None:
    (entry,) = keystore_evidence_from_document(_doc("alias-ca-mismatch.json"), "a.json", keystore="ks")
    assert entry.keystore == "ks"


def test_non_edge_document_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not an Edge keystore, alias or cert document"):
        keystore_evidence_from_document({"x": 1}, "x.json")


def test_combine_keeps_order_and_first_alias() -> None:
    # Given parts in order, When combined, Then everything is kept in order and the first KeyAlias wins
    combined = combine_evidence([Evidence(notes=("a",), key_alias=None),
                                 Evidence(notes=("b",), key_alias="k1"),
                                 Evidence(key_alias="k2", keystore="ks", sources=("s",))])
    assert (combined.notes, combined.key_alias, combined.keystore, combined.sources) == (
        ("a", "b"), "k1", "ks", ("s",))


def test_a_connection_captured_on_both_ends_counts_once() -> None:
    # Given the MP's and the backend's captures of the same connection, and a second connection on the MP
    from dataclasses import replace

    from tests.diagnosis.builders import CA_A, empty_cert_failed

    mp = empty_cert_failed(CA_A, source="hosts/mp1/capture.pcap")
    other = replace(mp, client="127.0.0.11:60000")
    backend = replace(mp, source="hosts/backend/capture.pcap")
    # When combined
    combined = combine_evidence([Evidence(handshakes=(backend,)), Evidence(handshakes=(mp, other))])
    # Then the shared connection is kept once (first capture wins) and a note says so
    assert [(h.client, h.source) for h in combined.handshakes] == [
        ("127.0.0.11:53122", "hosts/backend/capture.pcap"), ("127.0.0.11:60000", "hosts/mp1/capture.pcap")]
    assert combined.notes == (("hosts/mp1/capture.pcap: 1 connection(s) also captured in "
                               "hosts/backend/capture.pcap, counted once"),)


def test_the_same_endpoints_twice_in_one_capture_are_both_kept() -> None:
    # Given a client port reused within one capture, Then both handshakes stay
    from tests.diagnosis.builders import CA_A, empty_cert_failed

    hs = empty_cert_failed(CA_A)
    assert len(combine_evidence([Evidence(handshakes=(hs, hs))]).handshakes) == 2
