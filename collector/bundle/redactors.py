"""The redaction rules: one redactor per concern, each behind the same small `Redactor` interface.

A redactor receives a piece of text (a batch of whole lines, or a chunk of one long line) and returns the
text with its secrets replaced plus the 0-based line index, within that piece, of every replacement.
Redactors never add or remove line breaks, except `PrivateKeyRedactor`, which runs first and drops whole PEM
blocks. A redactor may keep state between pieces of the same file (a PEM block or a name/value pair split
across pieces); a fresh set is made for every file by `new_redactors()`, so no state is ever shared
between files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Protocol

from collector.bundle.scan import Scans, Shape, register
from collector.bundle.secret_formats import FORMAT_WORDS, SecretFormat, formats, secret_span

MASK = "REDACTED"
PRIVATE_KEY_MARKER = "[private key removed by apigee-collector]"

# Names whose values are secrets (query/form parameters, JSON/YAML keys, headers, log `key=value`, CLI flags).
# The keyword must end the name, so `token_type`, `secretRef` or `KeyAlias` are kept (the diagnosis
# needs them).
# a word starts after a non-letter or at a camelCase hump (`dbPwd`), whatever the pattern's IGNORECASE says
_WORD_START = r"(?:(?<![A-Za-z])|(?-i:(?<=[a-z])(?=[A-Z])))"
# `pass` and `pw`/`pwd` only as a word of their own (`keystore.pass`, `db_pwd`, JDBC `pwd=`), never inside
# another word (`bypass`, `compass`); keytool's `-storepass`/`-keypass` and JavaCallout's `storepass` and
# `keypass` properties by name; AWS `aws_secret_access_key` / `access_key_id` / `secretKey`.
_SECRET_WORDS = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|passcode|credentials?|oauth2-bearer"
    rf"|{_WORD_START}pass|{_WORD_START}pwd?|(?:src|dest|new)?(?:store|key|trust)[_-]?pass"
    r"|secret[_-]?(?:access[_-]?)?key|access[_-]?key(?:[_-]?id)?"
)
_SECRET_NAME = rf"[A-Za-z0-9_.-]*?(?:{_SECRET_WORDS})(?![A-Za-z0-9_-])"
_HEADER_NAME = r"(?:proxy-)?authorization|(?:set-)?cookie"
# JSON string content; and the content of a string escaped inside another JSON string (a trace's request
# body), which ends at the first \"
_STR = r'(?:[^"\\\n]|\\.)*'
_ESC_STR = r'(?:[^"\\\n]|\\+[^"\\\n])*'  # escaped at any depth: \" \\\" ... all end it
# an unquoted word that stops before a quote, escaped or not (a command line inside a JSON string)
_BARE = r"""(?:[^\s'"\\]|\\+(?![\\"]))+"""


class Redactor(Protocol):
    """The one interface every rule implements; `name` is the rule recorded in the manifest."""

    name: str

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        """Return the text with secrets masked and the 0-based line index of every redaction in it. `scans`
        holds the trigger words found in the piece by an earlier rule (see `scan.py`), if any."""
        ...


class _LineCounter:
    """Maps offsets of one text to 0-based line indexes, for offsets visited in increasing order."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 0

    def line_at(self, pos: int) -> int:
        if pos < self._pos:  # out of order (not expected from re.sub): recount from the start
            self._pos, self._line = 0, 0
        self._line += self._text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line


# Every word some rule's trigger looks for, plus the words that start a PEM block or a known secret format: a
# very long line is only ever cut far from all of them (`pieces.py`), so no rule's match is split by a cut.
TRIGGER_WORDS: set[str] = {"-----begin", "-----end", *FORMAT_WORDS}


class _Trigger:
    """Cheap pre-scan: the lines of a text that hold one of a rule's words, so the full patterns only
    run there.

    The words are searched in the lower-cased text (`scan.TextScan`, shared by every rule of a piece), many
    times faster than any regex scan.
    """

    def __init__(self, *words: str) -> None:
        self._words = words
        TRIGGER_WORDS.update(words)
        register(words)

    def line_spans(self, text: str, scans: Scans | None = None) -> list[tuple[int, int]]:
        return (scans if scans is not None else Scans()).of(text).line_spans(self._words)


class _ShapeTrigger:
    """The lines where the shape of a format's matches stands (`scan.Shape`); None (every line) for a text
    that is not ASCII."""

    def __init__(self, shape: Shape) -> None:
        self._shape = shape

    def line_spans(self, text: str, scans: Scans | None = None) -> list[tuple[int, int]] | None:
        return (scans if scans is not None else Scans()).of(text).shape_spans(self._shape)


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], "str | None"]]


def _substitute(
    pattern: re.Pattern[str],
    text: str,
    replace: Callable[[re.Match[str]], str | None],
    trigger: _Trigger | _ShapeTrigger | None = None,
    scans: Scans | None = None,
) -> tuple[str, list[int]]:
    """`re.sub` (only on the lines `trigger` finds, when given) that records the line of every real change."""
    spans = trigger.line_spans(text, scans) if trigger is not None else None
    if spans is not None:
        return _substitute_spans(text, spans, [(pattern, replace)])
    counter = _LineCounter(text)
    lines: list[int] = []

    def _one(match: re.Match[str]) -> str:
        new = replace(match)
        if new is None or new == match.group(0):
            return match.group(0)
        lines.append(counter.line_at(match.start()))
        return new

    return pattern.sub(_one, text), lines


def _substitute_lines(text: str, trigger: _Trigger, rules: list[_Rule],
                      scans: Scans | None = None) -> tuple[str, list[int]]:
    """Apply each (pattern, replace) in turn, only on the lines `trigger` finds; record the line
    of each change."""
    return _substitute_spans(text, trigger.line_spans(text, scans), rules)


def _substitute_spans(text: str, spans: list[tuple[int, int]], rules: list[_Rule]) -> tuple[str, list[int]]:
    """Apply each (pattern, replace) in turn on each span of whole lines; record the line of each change."""
    if not spans:
        return text, []
    counter = _LineCounter(text)
    lines: list[int] = []
    out: list[str] = []
    pos = 0
    for start, end in spans:
        line = counter.line_at(start)
        segment = text[start:end]
        for pattern, replace in rules:

            def _one(match: re.Match[str], replace: Callable[[re.Match[str]], str | None] = replace,
                     line: int = line) -> str:
                new = replace(match)
                if new is None or new == match.group(0):
                    return match.group(0)
                lines.append(line)
                return new

            segment = pattern.sub(_one, segment)
        out.append(text[pos:start])
        out.append(segment)
        pos = end
    out.append(text[pos:])
    return "".join(out), lines


class PrivateKeyRedactor:
    """Drops every PEM private key block (PKCS#8, ENCRYPTED, RSA, EC, DSA, OPENSSH, PGP), even
    across pieces."""

    name = "private-key"
    _BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
    _END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

    def __init__(self) -> None:
        self._dropping = False  # inside a block whose END has not been seen yet

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        out: list[str] = []
        lines: list[int] = []
        emitted_newlines = 0
        pos = 0
        while pos < len(text):
            if self._dropping:
                end = self._END.search(text, pos)
                if end is None:
                    return "".join(out), lines  # the whole rest of this piece belongs to the key
                pos = end.end()
                self._dropping = False
                continue
            begin = self._BEGIN.search(text, pos)
            if begin is None:
                out.append(text[pos:])
                break
            kept = text[pos : begin.start()]
            out.append(kept)
            emitted_newlines += kept.count("\n")
            lines.append(emitted_newlines)
            out.append(PRIVATE_KEY_MARKER)
            self._dropping = True
            pos = begin.end()
        return "".join(out), lines


class HeaderPropertyRedactor:
    """Values of `{"name": "Authorization", "value": "…"}` pairs (Edge trace headers and variables).

    The value may follow the name on one of the next lines (pretty-printed trace JSON) or in the next piece
    of a long line; on one line the value may also come first.
    """

    name = "header-property"
    # one lazy prefix only: nested repetitions here would backtrack for seconds on a long dotted name
    _SENSITIVE = (
        rf"[A-Za-z0-9_.-]*?(?:{_HEADER_NAME}|{_SECRET_WORDS})(?![A-Za-z0-9_-])"
        r"(?:\.values?(?:\.string)?)?"
    )
    # (\\+) is the backslash run of a JSON document escaped inside another one (a trace's request body),
    # any depth
    # (?<!\\): a backslash run is only tried from its start (else runs of backslashes backtrack quadratically)
    _NAME = re.compile(rf'(?<!\\)(\\*)"name\1"\s*:\s*\1"{_SENSITIVE}\1"', re.IGNORECASE)
    _VALUE = re.compile(rf'"value"\s*:\s*"({_STR})"|(?<!\\)(\\+)"value\2"\s*:\s*\2"({_ESC_STR})\2"')
    _VALUE_TRIGGER = _Trigger('"value', 'value\\"')
    _VALUE_FIRST = re.compile(
        rf'"value"\s*:\s*"({_STR})"\s*,\s*"name"\s*:\s*"{_SENSITIVE}"'
        rf'|(?<!\\)(\\+)"value\2"\s*:\s*\2"({_ESC_STR})\2"\s*,\s*\2"name\2"\s*:\s*\2"{_SENSITIVE}\2"',
        re.IGNORECASE,
    )
    # XML traces and proxy bundle policies: <Header name="Authorization">…</Header>,
    # <Property name="…">…</Property>
    _XML = re.compile(
        rf'<([A-Za-z][\w.-]{{0,64}})\s[^<>\n]{{0,256}}?\bname\s*=\s*\\*["\']{_SENSITIVE}\\*["\']'
        rf"[^<>\n]{{0,256}}>([^<\n]*)</\1>",
        re.IGNORECASE,
    )
    _XML_TRIGGER = _Trigger("name=", "name =")
    _NAME_WORDS = ('"name', 'name\\"')  # a "name" key, plain or escaped in a JSON string
    _WINDOW_LINES = 3  # how far after the name the value may be, in line breaks and in characters
    _WINDOW_CHARS = 1024

    def __init__(self) -> None:
        self._pending = -1  # line breaks still allowed before the value of a name seen in an earlier piece

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        scans = scans if scans is not None else Scans()
        text, lines = _substitute(self._VALUE_FIRST, text, _mask_plain_or_escaped, self._VALUE_TRIGGER, scans)
        text, more = _substitute(self._XML, text, lambda m: _mask_group(m, 2), self._XML_TRIGGER, scans)
        lines += more
        counter = _LineCounter(text)
        out: list[str] = []
        pos = 0  # text before pos is already in out
        search_from = 0
        anchor = (0, self._pending) if self._pending >= 0 else None  # (offset after a name, line budget)
        self._pending = -1
        scan = scans.of(text)
        if anchor is None and not any(scan.has(word) for word in self._NAME_WORDS):
            return text, sorted(lines)  # the common case in logs: nothing to pair
        while True:
            if anchor is None:
                name = self._NAME.search(text, search_from)
                if name is None:
                    break
                anchor = (name.end(), self._WINDOW_LINES)
            start, budget = anchor
            anchor = None
            window_end = min(_end_after_newlines(text, start, budget), start + self._WINDOW_CHARS)
            value = self._VALUE.search(text, start, window_end)
            if value is None:
                if window_end == len(text):  # the value may come in the next piece
                    self._pending = budget - text.count("\n", start)
                search_from = start
                continue
            group = 1 if value.group(1) is not None else 3
            if value.group(group) in ("", MASK):  # nothing to hide
                search_from = value.end()
                continue
            out.append(text[pos : value.start(group)])
            out.append(MASK)
            lines.append(counter.line_at(value.start()))
            pos = search_from = value.end(group)
        out.append(text[pos:])
        return "".join(out), sorted(lines)


register(HeaderPropertyRedactor._NAME_WORDS)


def _mask_plain_or_escaped(match: re.Match[str]) -> str | None:
    """Mask group 1 (a plain JSON string) or group 3 (one escaped inside another string; 2 is
    its backslashes)."""
    return _mask_group(match, 1 if match.group(1) is not None else 3)


def _end_after_newlines(text: str, start: int, budget: int) -> int:
    """Offset just before the (budget+1)-th line break after `start`, or the end of the text."""
    pos = start
    for _ in range(budget + 1):
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        pos = nl + 1
    return pos - 1


def _mask_group(match: re.Match[str], group: int) -> str | None:
    value = match.group(group)
    if not value or value == MASK:
        return None
    start, end = match.start(group) - match.start(), match.end(group) - match.start()
    whole = match.group(0)
    return whole[:start] + MASK + whole[end:]


class AuthorizationRedactor:
    """`Authorization:` / `Proxy-Authorization:` credentials in curl -H, HTTP dumps, JSON maps; the
    scheme is kept."""

    name = "authorization"
    _PATTERN = re.compile(
        r"""\b(?:proxy-)?authorization\\*["']?\s*[:=]\s*\\*["']?"""
        r"""(?:(?:basic|bearer|digest|negotiate|ntlm|token|hmac|aws4-hmac-sha256)\s)?"""
        r"""((?<=digest )[^'\r\n]+|[^'"\r\n\\]+)""",
        re.IGNORECASE,
    )

    # Basic/Bearer credentials wherever they stand (a log line, a variable with an innocent name)
    _SCHEME = re.compile(r"\b(?:basic|bearer)\s+([A-Za-z0-9._~+/-]{8,}=*)(?![\w=])", re.IGNORECASE)

    _TRIGGER = _Trigger("authorization")
    _SCHEME_TRIGGER = _Trigger("basic", "bearer")

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        scans = scans if scans is not None else Scans()
        text, lines = _substitute(self._PATTERN, text, _mask_credentials, self._TRIGGER, scans)
        text, more = _substitute(self._SCHEME, text, lambda m: _mask_group(m, 1), self._SCHEME_TRIGGER, scans)
        return text, sorted(lines + more)


_QUOTED_KEY_COLON = re.compile(r"""["']\s*:\s*$""")
_JSON_LITERAL = re.compile(
    r"\s*(?:null|true|false|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(?:[,}\]].*)?", re.DOTALL
)


def _mask_credentials(match: re.Match[str]) -> str | None:
    """Mask group 1 but keep trailing blanks (they belong to the text around the value). A JSON key such as
    ``"cookie": 1`` or ``"Authorization": null`` holds no credentials and stays (masking it would
    break JSON)."""
    value = match.group(1)
    stripped = value.rstrip()
    if not stripped or stripped == MASK:
        return None
    whole = match.group(0)
    start = match.start(1) - match.start()
    if _QUOTED_KEY_COLON.search(whole[:start]) and _JSON_LITERAL.fullmatch(value):
        return None
    return whole[:start] + MASK + value[len(stripped) :]


class CookieRedactor:
    """`Cookie:` / `Set-Cookie:` header values and curl `-b`/`--cookie` name=value arguments."""

    name = "cookie"
    _HEADER = re.compile(r"""\b(?:set-)?cookie\\*["']?\s*:\s*\\*["']?([^'"\r\n\\]+)""", re.IGNORECASE)
    _CURL = re.compile(
        r"""(?<![^\s"'])(?:-b|--cookie)(?:\s+|=|(?=[^\s'"\\]))"""
        rf"""(?:'([^'\n]*=[^'\n]*)'|"([^"\n]*=[^"\n]*)"|((?:[^\s'"\\=]|\\+(?![\\"]))*={_BARE}))"""
    )

    _TRIGGER = _Trigger("cookie", "-b")

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        return _substitute_lines(text, self._TRIGGER, [(self._HEADER, _mask_credentials),
                                                        (self._CURL, _mask_first_group)], scans)


def _mask_first_group(match: re.Match[str], groups: tuple[int, ...] | None = None) -> str | None:
    """Mask whichever alternative group matched (among `groups`, default all)."""
    for group in groups or range(1, (match.re.groups or 0) + 1):
        if match.group(group) is not None:
            return _mask_group(match, group)
    return None


class CurlUserRedactor:
    """The password of curl `-u user:pass` / `--user` / `--proxy-user` / `-U` (the user name is kept)."""

    name = "curl-user"
    _PATTERN = re.compile(
        r"""(?<![^\s"'])(?:-u|--user|-U|--proxy-user)(?:\s+|=|(?=[^\s'"\\]))"""
        rf"""(?:'[^':\n]*:([^'\n]*)'|"[^":\n]*:([^"\n]*)"|\\+"[^"\\:\n]*:({_ESC_STR})\\+"|[^\s:'"\\]+:({_BARE}))"""
    )

    _TRIGGER = _Trigger("-u", "--proxy-user")

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        return _substitute(self._PATTERN, text, _mask_first_group, self._TRIGGER, scans)


class UrlCredentialsRedactor:
    """The password in `scheme://user:password@host` URLs."""

    name = "url-credentials"
    _PATTERN = re.compile(r"""\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'"]*:([^\s/@'"]+)@""")

    _TRIGGER = _Trigger("://")

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        return _substitute(self._PATTERN, text, lambda m: _mask_group(m, 1), self._TRIGGER, scans)


class SecretParameterRedactor:
    """Passwords, tokens, API keys and client secrets by name: `k=v` (query, form, log), `"k": v` (JSON, YAML,
    headers), `<k>v</k>` (XML), `--k v` (command-line flags, keytool `-storepass`), `("k", "v")` (JS calls);
    `k%3Dv` when a query string travels URL-encoded inside another one."""

    name = "secret-parameter"
    _ASSIGN = re.compile(
        rf"""(?<![A-Za-z0-9_.-]){_SECRET_NAME}\s*(?:=|%3[dD])\s*(?:"([^"\n]*)"|'([^'\n]*)'"""
        rf"""|(\\+)"({_ESC_STR})\3"|((?:(?!%26)[^\s&'"#,;\\]|\\+(?![\\"]))+))""",
        re.IGNORECASE,
    )
    _COLON = re.compile(
        rf"""(?<![A-Za-z0-9_.\\-])(\\*["']?){_SECRET_NAME}\1\s*:\s*"""
        rf"""(?:"({_STR})"|(\\+)"({_ESC_STR})\3"|'([^'\n]*)'"""
        r"""|(?!null\b|true\b|false\b)([^\s,;}'"\[{\\][^\s,;}'"\\]*))""",
        re.IGNORECASE,
    )
    _XML = re.compile(rf"<({_SECRET_NAME})>([^<\n]*)</\1>", re.IGNORECASE)
    _FLAG = re.compile(rf"""(?<![^\s"'])--?{_SECRET_NAME}\s+(?!-)(?:'([^'\n]*)'|"([^"\n]*)"|({_BARE}))""",
                       re.IGNORECASE)
    # openssl -passin pass:X
    _OPENSSL_PASS = re.compile(rf"""(?<![^\s"'])-pass(?:in|out)?\s+['"]?pass:({_BARE})""")
    # a quoted secret name, then a quoted value: JS `context.setVariable("private.password", "x")`,
    # `props.put('keystore.pass', 'x')`, a JSON array `["password", "x"]`
    _CALL = re.compile(rf"""(['"`]){_SECRET_NAME}\1\s*,\s*(?:"([^"\n]*)"|'([^'\n]*)'|`([^`\n]*)`)""",
                       re.IGNORECASE)

    _TRIGGER = _Trigger("pass", "secret", "token", "apikey", "api_key", "api-key", "privatekey",
                        "private_key", "private-key", "credential", "oauth2-bearer", "pw", "accesskey",
                        "access_key", "access-key")

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        return _substitute_lines(text, self._TRIGGER, [
            (self._ASSIGN, lambda m: _mask_first_group(m, (1, 2, 4, 5))),  # 3 is the escaping backslashes
            (self._COLON, _mask_colon_value),
            (self._XML, lambda m: _mask_group(m, 2)),
            (self._FLAG, _mask_first_group),
            (self._OPENSSL_PASS, lambda m: _mask_group(m, 1)),
            (self._CALL, lambda m: _mask_first_group(m, (2, 3, 4))),  # 1 is the name's quote
        ], scans)


def _mask_colon_value(match: re.Match[str]) -> str | None:
    """Mask a `key: value`; a bare value after a JSON key becomes a JSON string so the document
    stays valid."""
    for group in (2, 4, 5):
        if match.group(group) is not None:
            return _mask_group(match, group)
    bare = match.group(6)
    if bare is None or bare == MASK:
        return None
    whole = match.group(0)
    start = match.start(6) - match.start()
    quote = match.group(1)  # the key's quote, with the backslashes of its escaping depth
    replacement = f"{quote}{MASK}{quote}" if quote.endswith('"') else MASK
    return whole[:start] + replacement + whole[start + len(bare) :]


class JwtRedactor:
    """JSON Web Tokens wherever they stand (bearer tokens logged without a telling name); header and payload
    are both base64url JSON, so ``eyJ….eyJ…`` is specific enough."""

    name = "jwt"
    _PATTERN = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
    _TRIGGER = _Trigger("eyj")

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        return _substitute(self._PATTERN, text, lambda m: MASK if m.group(0) != MASK else None, self._TRIGGER,
                           scans)


def _format_trigger(secret_format: SecretFormat) -> _Trigger | _ShapeTrigger | None:
    """The lines a format runs on: those holding a gate word, else those where its shape stands, else all."""
    if secret_format.gate:
        return _Trigger(*secret_format.gate)
    return _ShapeTrigger(secret_format.shape) if secret_format.shape is not None else None


class SecretFormatRedactor:
    """Credentials known by their format wherever they stand (AWS access key ids, service tokens): the
    maintained detect-secrets patterns (`secret_formats`)."""

    name = "secret-format"

    def redact(self, text: str, scans: Scans | None = None) -> tuple[str, list[int]]:
        scans = scans if scans is not None else Scans()
        lines: list[int] = []
        scan = scans.of(text)
        gated, gate_words = _gated_formats()
        present = {word for word in gate_words if scan.has(word)}  # each word searched once per piece
        for pattern, words, trigger in gated:
            if words and present.isdisjoint(words):
                continue  # the usual case: no line of this piece can hold that format
            text, more = _substitute(pattern, text, _mask_format_span, trigger, scans)
            lines += more
        return text, sorted(lines)


_Gated = tuple[re.Pattern[str], tuple[str, ...], "_Trigger | _ShapeTrigger | None"]


@functools.cache
def _gated_formats() -> tuple[tuple[_Gated, ...], tuple[str, ...]]:
    """Each detect-secrets format with its gate words and trigger, and every gate word (built on first use,
    like `secret_formats.formats`)."""
    loaded = formats()
    return (tuple((f.pattern, f.gate, _format_trigger(f)) for f in loaded),
            tuple({word for f in loaded for word in f.gate}))


def load_rules() -> None:
    """Build now what the rules otherwise build on their first file (detect-secrets' formats, ~0.3 s, and
    their gates): for a process that has time to spare before its first file arrives."""
    _gated_formats()


def _mask_format_span(match: re.Match[str]) -> str | None:
    start, end = secret_span(match)
    if start >= end or match.string[start:end] == MASK:
        return None
    whole = match.group(0)
    return whole[: start - match.start()] + MASK + whole[end - match.start() :]


def new_redactors() -> list[Redactor]:
    """A fresh set of every rule for one file, in the order they must run (private keys first)."""
    return [
        PrivateKeyRedactor(),
        HeaderPropertyRedactor(),
        AuthorizationRedactor(),
        CookieRedactor(),
        CurlUserRedactor(),
        UrlCredentialsRedactor(),
        SecretParameterRedactor(),
        JwtRedactor(),
        SecretFormatRedactor(),
    ]


RULES = tuple(r.name for r in new_redactors())
