"""Secrets recognised by their format alone (cloud access keys, service tokens): detect-secrets' detectors.

detect-secrets (Yelp, Apache-2.0) maintains one regex-based detector per credential format (AWS access key
ids, Azure storage keys, GitHub/GitLab/Slack/Stripe/SendGrid/Twilio/OpenAI... tokens); a new release brings
new formats with no change here. Only their patterns are used: no plugin is run, nothing is verified over the
network, and the detectors that overlap our own rules or would remove evidence are left out (`LEFT_OUT`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from collector.bundle.scan import Shape, fold_table

# Detector class name -> why its patterns are not used.
LEFT_OUT = {
    "IPPublicDetector": "captures and the analysis need IP addresses",
    "PrivateKeyDetector": "PrivateKeyRedactor drops whole PEM blocks, not only their first line",
    "JwtTokenDetector": "JwtRedactor masks JSON Web Tokens",
    "BasicAuthDetector": "UrlCredentialsRedactor masks user:password@ in URLs",
}
# Words (lower case) one of which stands in every match of a detector's patterns: its patterns only run on the
# lines that hold one (most detectors cost ~20x our own rules on a plain log otherwise). A detector missing
# here (one a newer release adds), or a pattern `_GATED_PATTERNS` does not know (one a release changes), runs
# on every line: slower, never blind.
_GATES = {
    "ArtifactoryDetector": ("akc", *(f"ap{c}" for c in "0123456789abcdef")),
    "AWSKeyDetector": ("a3t", "abia", "acca", "akia", "asia", "aws"),
    "AzureStorageKeyDetector": ("accountkey",),
    "CloudantDetector": ("key", "pw", "pass", "token", "cloudant.com"),
    "GitHubTokenDetector": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "GitLabTokenDetector": ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-", "glimt-",
                            "glptt-", "glagent-", "gloas-"),
    "IbmCloudIamDetector": ("key", "pw", "pass", "token"),
    "IbmCosHmacDetector": ("secret",),
    "MailchimpDetector": ("-us",),
    "NpmDetector": ("_authtoken",),
    "OpenAIDetector": ("t3blbkfj",),
    "PypiTokenDetector": ("pypi-",),
    "SendGridDetector": ("sg.",),
    "SlackDetector": ("xox", "hooks.slack.com"),
    "SoftlayerDetector": ("key", "pw", "pass", "token", "softlayer.com"),
    "SquareOAuthDetector": ("sq0csp-",),
    "StripeDetector": ("k_live_",),
}
# The exact patterns the words above were read from (detect-secrets 1.5): `pattern_digest` of each. A word
# gate holds for these patterns only; a changed one could match without any of its detector's words.
_GATED_PATTERNS = frozenset({
    "01436b93a2a7d62e",
    "0a84de26d05ec01d",
    "332ad5bc107051c4",
    "37cc81caff37efea",
    "4dfd257ab90f16da",
    "59503c343fe889d3",
    "60fa2e8244f23e84",
    "65898e81b8b9667d",
    "68d2a962f499473d",
    "6bdf7db805d9017a",
    "71af0e102c08dd03",
    "743612897d05c925",
    "85b9301aa8c82c21",
    "86f831ee4d4281f5",
    "8c7c23290797f087",
    "98490516304a893f",
    "a78a531bd630ed73",
    "af3ef7de89e92dc9",
    "b4ac01445d8a6681",
    "c06412cd4c3599b5",
    "c208408fa11f9c7c",
    "cdd0664f773a378e",
    "cddbd3a1412cc3d4",
    "d64576e8b91ca465",
    "dc3d337e134fb073",
    "dd5d5c22ac2c0846",
    "dee1cfb51abb80c2",
    "ef4446d05d51faac",
    "f11cb770ea91010e",
    "fc0bf3786c5eb2a1",
    "fd51cbb18180f5e4",
})
_DIGITS = b"0123456789"
_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WORD = fold_table(_LETTERS + _DIGITS + b"_-", b"a")  # one table for both: a piece is folded once for them
# The patterns (exactly as detect-secrets 1.5 ships them) that no word gates, by the shape of their matches
# (`scan.Shape`): each then runs only on the lines of ASCII text where that shape stands, on every line of
# any other text. A pattern a newer release changes or adds runs on every line.
_SHAPES = {
    # 8 to 10 digits and a colon: through the table, "00000000:" ends the digits and colon of every match
    ("TelegramBotTokenDetector", r"\d{8,10}:[0-9A-Za-z_-]{35}"):
        Shape(fold_table(_DIGITS, b"0"), b"0" * 8 + b":"),
    # the last 24 characters before the first dot, both dots, and the 6 and 27 characters after them
    ("DiscordBotTokenDetector", r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}"):
        Shape(_WORD, b"a" * 24 + b"." + b"a" * 6 + b"." + b"a" * 27),
    # 34 letters and digits in a row (`_` and `-` fold too: more lines, the same table as Discord's)
    ("TwilioKeyDetector", r"AC[a-z0-9]{32}"): Shape(_WORD, b"a" * 34),
    ("TwilioKeyDetector", r"SK[a-z0-9]{32}"): Shape(_WORD, b"a" * 34),
}
# Every gate word: `redact` never cuts a very long line near one, so no match is split (ungated formats hold
# no blank, quote or separator, where cuts happen).
FORMAT_WORDS = tuple(sorted({word for words in _GATES.values() for word in words}))
_TRIM = " \t\r\n=:\"'"


@dataclass(frozen=True)
class SecretFormat:
    """One detect-secrets pattern.

    Attributes:
        detector: the detector's class name (``AWSKeyDetector``).
        pattern: its compiled pattern, as the library ships it.
        gate: lower-case words one of which every match holds; empty: none known.
        shape: for a pattern with no gate words, the shape of its matches (`_SHAPES`); with neither, the
            pattern runs on every line.
    """

    detector: str
    pattern: re.Pattern[str]
    gate: tuple[str, ...] = ()
    shape: Shape | None = None


@functools.cache
def formats() -> tuple[SecretFormat, ...]:
    """Every pattern of every regex-based detector detect-secrets ships, but those in `LEFT_OUT`; loaded on
    first use: importing detect-secrets costs ~0.3 s, which a run spends while it waits for the capture
    window rather than before it reaches its first host."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # noqa: PLC0415
    from detect_secrets.plugins.base import RegexBasedDetector  # noqa: PLC0415

    formats: list[SecretFormat] = []
    detectors: list[type] = list(get_mapping_from_secret_type_to_class().values())
    for detector in detectors:
        if not issubclass(detector, RegexBasedDetector) or detector.__name__ in LEFT_OUT:
            continue
        # declared as an abstract property, but a plain class attribute (a tuple) on every shipped detector
        patterns: tuple[object, ...] = tuple(getattr(detector, "denylist", ()))
        for p in patterns:
            if isinstance(p, re.Pattern):
                gate = gate_words(detector.__name__, p)
                formats.append(SecretFormat(detector.__name__, p, gate, _shape(detector.__name__, p, gate)))
    return tuple(sorted(formats, key=lambda f: f.detector))


def pattern_digest(pattern: re.Pattern[str]) -> str:
    """Its flags and text, hashed: what `_GATED_PATTERNS` knows a pattern by."""
    return hashlib.sha256(f"{pattern.flags}:{pattern.pattern}".encode()).hexdigest()[:16]


def gate_words(detector: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    """The words one of which every match of `pattern` holds; none (run everywhere) for a pattern whose exact
    text the gates were not read from."""
    return _GATES.get(detector, ()) if pattern_digest(pattern) in _GATED_PATTERNS else ()


def _shape(detector: str, pattern: re.Pattern[str], gate: tuple[str, ...]) -> Shape | None:
    if gate or pattern.flags != re.UNICODE:  # a flag (IGNORECASE...) would make the shape wrong
        return None
    return _SHAPES.get((detector, pattern.pattern))


def secret_span(match: re.Match[str]) -> tuple[int, int]:
    """Where the secret itself stands in a match, without the blanks, quotes and separators some patterns take
    around the token: the value group of a `name = value` pattern (the first group that matched, when it ends
    the match), else the whole match (a group at the start, like GitHub's `(ghp|gho)_`, is only a prefix)."""
    start, end = match.span()
    text = match.string
    while start < end and text[start] in _TRIM:
        start += 1
    while end > start and text[end - 1] in _TRIM:
        end -= 1
    for group in range(1, (match.re.groups or 0) + 1):
        if match.group(group):
            if match.end(group) >= end and match.start(group) > start:
                return match.start(group), match.end(group)
            break
    return start, end

