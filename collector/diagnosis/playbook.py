"""The playbook's words for each cause: summary and resolution texts, with variants when evidence narrows a cause.

`rules.py` fills the values; `diagnose.py` renders them. A new cause adds one `TEMPLATES` entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.diagnosis.causes import Cause


@dataclass(frozen=True)
class Template:
    """`str.format` texts; unknown values print as the `_DEFAULTS` wording."""

    summary: str
    resolution: str


TEMPLATES: dict[Cause, Template] = {
    Cause.MISSING_CLIENT_CERTIFICATE: Template(
        "The message processor sent no client certificate to {backend}: {keystore} holds no private key and"
        " certificate{under_alias} (playbook cause: No Client Certificate).",
        "Upload the complete client certificate chain with its private key to {keystore} under {alias}"
        " (the KeyAlias of the target's SSLInfo; a keystore reference must point to this keystore), then"
        " reproduce the request again.",
    ),
    Cause.CA_MISMATCH: Template(
        "The message processor sent no client certificate to {backend}: its keystore certificate was issued by"
        " {leaf_issuer}, which is not among the CAs the backend accepts (playbook cause: Certificate Authority"
        " Mismatch).",
        "Add the certificate of {leaf_issuer} (the issuer of the keystore's leaf certificate) to the backend's"
        " truststore, or upload to {keystore} under {alias} a client certificate issued by one of the"
        " acceptable CAs: {acceptable}.{chain_hint}",
    ),
    Cause.CLIENT_CERTIFICATE_NOT_SENT: Template(
        "The message processor answered the certificate request of {backend} with an empty Certificate"
        " ({reaction}); without the keystore documents the two playbook causes (No Client Certificate,"
        " Certificate Authority Mismatch) cannot be told apart.",
        "Collect the keystore the target's SSLInfo names (the playbook's \"get cert for keystore\" output: the"
        " keystore, alias and cert documents) and run collect analyze again with them. An empty keystore means"
        " No Client Certificate; a leaf issuer outside the acceptable CA names ({acceptable}) means Certificate"
        " Authority Mismatch.",
    ),
    Cause.CLIENT_CERTIFICATE_REJECTED: Template(
        "The message processor sent a client certificate ({client_leaf}) and {backend} rejected it ({reaction}).",
        "Make the backend trust the certificate: add its issuer ({client_issuer}) to the backend's truststore and"
        " check that the certificate is valid (dates, key usage); the backend's log says why it refused it.",
    ),
    Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH: Template(
        "The TLS handshake with {backend} failed before any client certificate was asked for ({reaction}).",
        "This is not a client certificate problem: compare the TLS versions and cipher suites both sides allow,"
        " the SNI sent ({sni}), and whether the message processor trusts the backend's certificate chain (the"
        " target's TrustStore); see the playbook \"SSL Handshake Failures\".",
    ),
    Cause.ENCRYPTED_HANDSHAKE: Template(
        "The handshakes with {backend} use TLS 1.3 and no key log was given, so the certificate request, the"
        " client certificate and the alerts are encrypted in the capture.",
        "Run `collect probe {target}` to read the backend's acceptable CA names, or give collect analyze the"
        " key log (SSLKEYLOGFILE) of the capture, together with the keystore documents; pinning the target to"
        " TLS 1.2 while diagnosing also works.",
    ),
    Cause.HANDSHAKE_OK: Template(
        "All {count} TLS handshake(s) in the input completed and no client certificate was refused.",
        "Nothing to fix at the TLS layer in this input: capture again while reproducing the 503, and check the"
        " backend's HTTP answers.",
    ),
    Cause.NO_TLS_HANDSHAKE: Template(
        "The input holds no TLS handshake to analyze.",
        "Capture while the 503 is reproduced (tcpdump -i any -s 0 host BACKEND_IP -w FILE on the message"
        " processor or the backend) and give collect analyze that file with the keystore documents.",
    ),
}

# Variants of a cause's texts when the evidence narrows it down; a rule picks one by name.
VARIANTS: dict[tuple[Cause, str], Template] = {
    (Cause.CLIENT_CERTIFICATE_NOT_SENT, "acceptable"): Template(
        "The message processor answered the certificate request of {backend} with an empty Certificate"
        " ({reaction}), although {keystore} holds a key entry issued by an acceptable CA.",
        "Check that the target's KeyAlias names {alias} of {keystore} (and that its keystore reference points"
        " to this keystore), that the key's type suits the backend's signature algorithms, and that the"
        " keystore deployed on the message processors is the one collected; -Djavax.net.debug=ssl:handshake on"
        " the message processor shows which alias JSSE ignored and why.",
    ),
    (Cause.CLIENT_CERTIFICATE_NOT_SENT, "any-ca"): Template(
        "The message processor answered the certificate request of {backend} with an empty Certificate"
        " ({reaction}); the backend named no acceptable CA, so JSSE would have sent any key entry: the keystore"
        " most likely holds no key and certificate (playbook cause: No Client Certificate).",
        "Check that {keystore} holds a key and certificate under {alias}: collect its keystore, alias and cert"
        " documents (the playbook's \"get cert for keystore\" output) and run collect analyze again with them.",
    ),
    (Cause.ENCRYPTED_HANDSHAKE, "probed"): Template(
        "The handshakes with {backend} use TLS 1.3 and no key log was given; the probe shows the acceptable CA"
        " names, but the keystore documents needed to judge them are missing.",
        "Give collect analyze the keystore, alias and cert documents of the target's keystore (the playbook's"
        " \"get cert for keystore\" output) with the probe results, or the capture's key log (SSLKEYLOGFILE).",
    ),
}

_DEFAULTS = {
    "backend": "the backend",
    "keystore": "the keystore named by the target's SSLInfo",
    "alias": "the alias the target's KeyAlias names",
    "under_alias": "",
    "leaf_issuer": "an unknown CA",
    "acceptable": "see the certificate request",
    "chain_hint": "",
    "reaction": "no alert seen",
    "client_leaf": "subject unknown",
    "client_issuer": "unknown",
    "sni": "none",
    "target": "BACKEND:PORT",
    "count": "0",
}


# Filled into {chain_hint} when the keystore holds the leaf only.
CHAIN_HINT = (" If the leaf was issued by an intermediate CA of an acceptable CA, upload the complete chain"
              " (leaf and intermediates): JSSE matches the issuer of any certificate of the stored chain.")

def template_for(cause: Cause, variant: str = "") -> Template:
    """The texts of a cause, or of one of its variants."""
    return VARIANTS.get((cause, variant), TEMPLATES[cause])


def render(template: str, values: dict[str, str]) -> str:
    """Fill a template; a value the finding does not know prints as its default wording."""
    return template.format_map({**_DEFAULTS, **{k: v for k, v in values.items() if v}})
