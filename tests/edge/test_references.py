"""References: `ref://` values and reference documents."""

from __future__ import annotations

import pytest

from collector.edge.references import Reference, parse_reference, reference_name


@pytest.mark.parametrize(
    "value, name",
    [
        ("ref://myKeystoreRef", "myKeystoreRef"),
        ("myKeystore", None),
        (None, None),
        ("ref://", None),
        (" REF://x ", "x"),
    ],
)
def test_reference_name(value: str | None, name: str | None) -> None:
    assert reference_name(value) == name


def test_verbatim_reference_document() -> None:
    # Given edge-api.md §1.2's example, Then refers and resourceType come out
    document = {"name": "MyReference", "refers": "MyKeystore", "resourceType": "KeyStore"}
    assert parse_reference(document) == Reference("MyReference", "MyKeystore", "KeyStore")


@pytest.mark.parametrize("document", [{"name": "r"}, {"refers": "ks"}, ["r"]])
def test_broken_reference_documents(document: object) -> None:
    with pytest.raises(ValueError):
        parse_reference(document)
