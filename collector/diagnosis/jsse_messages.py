"""What the MP's JSSE said: the exception texts of system.log and error.cause, read as signs of a cause.

The texts are JSSE's own (JDK 8-17, and the messages Edge wraps them in; where each was observed:
`shared/reference/tls-failure-family.md`). Newer JDKs prefix the alert name in parentheses, so phrases are
matched as case-insensitive substrings. A sign corroborates what the capture shows and names the cause when
the capture cannot (no ClientHello, no capture at all); several causes share some texts, which is why a sign
lists the causes it fits rather than deciding alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_MAX_QUOTE = 2000  # a log line quoted in evidence; longer lines are cut (they stay whole in the bundle)


@dataclass(frozen=True)
class JsseSign:
    """One recognised JSSE text.

    Attributes:
        phrase: the phrase found (JSSE's words, as quoted in evidence).
        causes: the cause ids (DESIGN's vocabulary) this text fits, the most likely first.
        line: the whole line it was found in, for quoting.
        source: where the line was read (a bundle path such as ``hosts/mp1/system.log.excerpt``, or
            ``trace error.cause``); "" when not known.
    """

    phrase: str
    causes: tuple[str, ...]
    line: str
    source: str = ""

    def to_json(self) -> dict[str, object]:
        return {"phrase": self.phrase, "causes": list(self.causes), "line": self.line, "source": self.source}


# Most specific first: "Received fatal alert: handshake_failure" must not hide a PKIX text on the same line.
_SIGNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PKIX path building failed", ("server-certificate-untrusted",)),
    ("unable to find valid certification path", ("server-certificate-untrusted",)),
    ("validity check failed", ("server-certificate-expired",)),
    ("CertificateExpiredException", ("server-certificate-expired",)),
    ("CertificateNotYetValidException", ("server-certificate-expired",)),
    ("No subject alternative DNS name matching", ("server-hostname-mismatch",)),
    ("No subject alternative names matching IP address", ("server-hostname-mismatch",)),
    ("No subject alternative names present", ("server-hostname-mismatch",)),
    ("No name matching", ("server-hostname-mismatch",)),
    ("No appropriate protocol", ("protocol-mismatch",)),
    ("Received fatal alert: protocol_version", ("protocol-mismatch",)),
    ("No negotiable cipher suite", ("cipher-mismatch",)),
    ("no cipher suites in common", ("cipher-mismatch",)),
    ("Received fatal alert: unrecognized_name", ("sni-required",)),
    ("Unsupported or unrecognized SSL message", ("backend-not-tls",)),
    ("plaintext connection?", ("backend-not-tls",)),
    ("Connection refused", ("connection-refused",)),
    # The JDK's SocketTimeoutException when no SYN-ACK came back in time (connection-refused's unanswered
    # variant, not a refusal).
    ("Connect timed out", ("connection-refused",)),
    ("Received fatal alert: bad_certificate",
     ("client-certificate-not-sent", "missing-client-certificate", "ca-mismatch",
      "client-certificate-rejected")),
    ("Received fatal alert: certificate_required",
     ("client-certificate-not-sent", "missing-client-certificate", "ca-mismatch")),
    ("Received fatal alert: unknown_ca", ("client-certificate-rejected",)),
    ("Received fatal alert: certificate_unknown", ("client-certificate-rejected",)),
    # OpenSSL backends answer an empty client certificate in TLS 1.2 with handshake_failure, as they answer a
    # ClientHello without a common suite: the capture tells which.
    ("Received fatal alert: handshake_failure",
     ("cipher-mismatch", "client-certificate-not-sent", "handshake-failed-before-client-auth")),
)


def read_jsse_signs(lines: Iterable[str], source: str = "") -> tuple[JsseSign, ...]:
    """Every recognised JSSE text in `lines` (MP log lines for the message id, trace error causes), in order;
    one sign per line, the most specific phrase of that line; `source` says where the lines were read."""
    signs = []
    for line in lines:
        lowered = line.lower()
        for phrase, causes in _SIGNS:
            if phrase.lower() in lowered:
                signs.append(JsseSign(phrase, causes, line.strip()[:_MAX_QUOTE], source))
                break
    return tuple(signs)


def signs_for(cause: str, signs: tuple[JsseSign, ...]) -> tuple[JsseSign, ...]:
    """The signs that fit `cause`."""
    return tuple(s for s in signs if cause in s.causes)
