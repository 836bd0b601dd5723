"""Redaction: one named case per rule and form, seeded secrets that never survive, streams, bytes
and archives."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from collector.bundle.redact import (
    MAX_LINES_PER_RULE,
    PIECE_BYTES,
    RULE_KEY_FILE,
    Redaction,
    redact_bytes,
    redact_seekable,
    redact_stream,
    redact_text,
    summarize_redactions,
)
from collector.bundle.redactors import PRIVATE_KEY_MARKER, RULES
from collector.errors import BundleError

SECRET = "S3cr3tValue9"

PEM_KINDS = ["PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY",
             "OPENSSH PRIVATE KEY"]


def _pem(kind: str) -> str:
    return (f"-----BEGIN {kind}-----\nMIIEv{SECRET}QIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"
            f"-----END {kind}-----\n")


# (case id, text, rule that must fire, text that must remain)
CASES = [
    ("curl -H bearer", f"curl -H 'Authorization: Bearer {SECRET}' https://api.example.com/v1/x",
     "authorization", "Authorization: Bearer REDACTED"),
    ("curl --header basic", f'curl --header "authorization: Basic {SECRET}==" https://h/', "authorization",
     "authorization: Basic REDACTED"),
    ("http dump", f"GET /x HTTP/1.1\r\nHost: h\r\nAUTHORIZATION: bearer {SECRET}\r\nAccept: */*\r\n",
     "authorization", "Host: h"),
    ("basic anywhere", f"2026-11-27 WARN retrying with Basic {SECRET}== for app x", "authorization",
     "retrying with Basic REDACTED for app x"),
    ("bearer in a variable", '{"name": "flow.creds", "value": "Bearer ' + SECRET + '"}', "authorization",
     '"value": "Bearer REDACTED"'),
    ("numeric header value", "Authorization: 123456789\n", "authorization", "Authorization: REDACTED"),
    ("proxy-authorization", f"Proxy-Authorization: Basic {SECRET}\n", "authorization",
     "Proxy-Authorization: Basic"),
    ("json header map", json.dumps({"headers": {"Authorization": f"Bearer {SECRET}", "Host": "h"}}),
     "authorization", '"Host": "h"'),
    ("trace property one line", json.dumps({"name": "Authorization", "value": f"Bearer {SECRET}"}),
     "header-property", '"name": "Authorization"'),
    ("trace property pretty",
     '{\n  "name" : "request.header.authorization",\n  "value" : "Basic ' + SECRET + '"\n}',
     "header-property", '"value" : "REDACTED"'),
    ("trace property value first", '{"value": "' + SECRET + '", "name": "Cookie"}', "header-property",
     '"name": "Cookie"'),
    ("trace variable client_secret", '{"name": "request.formparam.client_secret", "value": "' + SECRET + '"}',
     "header-property", "client_secret"),
    ("xml policy header",
     f'<Headers><Header name="Authorization">Basic {SECRET}</Header><Header name="Host">h</Header></Headers>',
     "header-property", '<Header name="Host">h</Header>'),
    ("xml trace property", f"<Property name='request.queryparam.apikey'>{SECRET}</Property>",
     "header-property", "<Property name='request.queryparam.apikey'>REDACTED</Property>"),
    ("trace body json", json.dumps({"content": json.dumps({"client_secret": SECRET, "grant_type": "x"})}),
     "secret-parameter", 'grant_type'),
    ("trace body header pair",
     json.dumps({"content": json.dumps([{"name": "Authorization", "value": SECRET}])}),
     "header-property", '\\"name\\": \\"Authorization\\"'),
    ("cookie header", f"Cookie: JSESSIONID={SECRET}; theme=dark\n", "cookie", "Cookie: REDACTED"),
    ("set-cookie header", f"Set-Cookie: sid={SECRET}; Path=/; HttpOnly\n", "cookie", "Set-Cookie: REDACTED"),
    ("curl -b", f"curl -b 'sid={SECRET}' https://h/", "cookie", "curl -b 'REDACTED'"),
    ("curl --cookie", f"curl --cookie sid={SECRET} https://h/", "cookie", "--cookie REDACTED"),
    ("curl -u", f"curl -u alice@example.com:{SECRET} https://api.enterprise.apigee.com/v1/o", "curl-user",
     "-u alice@example.com:REDACTED"),
    ("curl -u quoted", f"curl -u 'alice:{SECRET} with space' https://h/", "curl-user", "-u 'alice:REDACTED'"),
    ("curl --user=", f"curl --user=bob:{SECRET} https://h/", "curl-user", "--user=bob:REDACTED"),
    ("curl glued -u", f"curl -ubob:{SECRET} https://h/", "curl-user", "-ubob:REDACTED"),
    ("url credentials", f"fetching https://deploy:{SECRET}@ms.example.com:8080/v1 now", "url-credentials",
     "https://deploy:REDACTED@ms.example.com:8080/v1"),
    ("query apikey", f"GET /v1/weather?apikey={SECRET}&city=x HTTP/1.1", "secret-parameter", "&city=x"),
    ("query access_token", f"https://h/cb?access_token={SECRET}&token_type=bearer", "secret-parameter",
     "token_type=bearer"),
    ("form body", f"grant_type=password&username=a&password={SECRET}&mfa_token=123456", "secret-parameter",
     "grant_type=password&username=a"),
    ("json password", json.dumps({"username": "a", "password": SECRET}), "secret-parameter",
     '"username": "a"'),
    ("json client_secret", json.dumps({"client_secret": SECRET, "client_id": "abc"}), "secret-parameter",
     '"client_id": "abc"'),
    ("json numeric passcode", '{"passcode": 12345' + SECRET[-1:] + "9}", "secret-parameter",
     '"passcode": "REDACTED"'),
    ("log key=value", f"2026-11-27 INFO login user=bob passwd={SECRET} from 10.1.2.3", "secret-parameter",
     "from 10.1.2.3"),
    ("env var", f"APIGEE_PASSWORD={SECRET}\n", "secret-parameter", "APIGEE_PASSWORD=REDACTED"),
    ("quoted value", f'db.secret = "{SECRET} and more"\n', "secret-parameter", 'db.secret = "REDACTED"'),
    ("yaml", f"auth:\n  token: {SECRET}\n", "secret-parameter", "token: REDACTED"),
    ("api key header", f"x-api-key: {SECRET}\n", "secret-parameter", "x-api-key: REDACTED"),
    ("xml element", f"<Properties><Password>{SECRET}</Password></Properties>", "secret-parameter",
     "<Password>REDACTED</Password>"),
    ("bare jwt", f"2026-11-27 DEBUG verified eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{SECRET}.sig-{SECRET} for app",
     "jwt", "verified REDACTED for app"),
    ("openssl passin", f"openssl pkcs12 -in c.p12 -passin pass:{SECRET} -nokeys", "secret-parameter",
     "-passin pass:REDACTED -nokeys"),
    ("cli flag", f"collect --org o --token {SECRET} --env e", "secret-parameter", "--env e"),
    ("curl oauth2 bearer", f"curl --oauth2-bearer {SECRET} https://h", "authorization", "https://h"),
    # issue 16, defect 5: credentials the rules above once missed
    ("aws access key id", f"creds loaded AKIAIOSFODNN7{SECRET[:7].upper()} for s3", "secret-format",
     "creds loaded REDACTED for s3"),
    ("aws secret env", f"AWS_SECRET_ACCESS_KEY={SECRET}wJalrXUtnFEMI/K7MDENG\n", "secret-parameter",
     "AWS_SECRET_ACCESS_KEY=REDACTED"),
    ("aws credentials file",
     f"[default]\naws_access_key_id = X\naws_secret_access_key = {SECRET}\nregion = x\n",
     "secret-parameter", "region = x"),
    ("aws secret quoted", f"s3 = {{aws_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY{SECRET[:10]}'}}", "secret-format",
     "s3 = {aws_key: 'REDACTED'}"),
    ("keytool storepass keypass", f"keytool -importkeystore -srcstorepass {SECRET} -deststorepass {SECRET} "
     f"-keypass {SECRET} -v", "secret-parameter", "-deststorepass REDACTED -keypass REDACTED -v"),
    ("jdbc pwd", f"jdbc:sqlserver://db:1433;user=sa;pwd={SECRET};database=x", "secret-parameter",
     "pwd=REDACTED;database=x"),
    ("javacallout storepass", f'<Properties><Property name="storepass">{SECRET}</Property>'
     f'<Property name="keypass">{SECRET}</Property><Property name="alias">a</Property></Properties>',
     "header-property", '<Property name="alias">a</Property>'),
    ("properties keystore.pass", f"keystore.path=/opt/k.jks\nkeystore.pass={SECRET}\n", "secret-parameter",
     "keystore.path=/opt/k.jks\nkeystore.pass=REDACTED"),
    ("js var password", f"var dbPwd = '{SECRET}';\nvar user = 'app';", "secret-parameter",
     "var user = 'app';"),
    ("js setVariable", f'context.setVariable("private.password", "{SECRET}");', "secret-parameter",
     'context.setVariable("private.password", "REDACTED");'),
    ("js template literal", f"const clientSecret = `{SECRET}`;", "secret-parameter", "const clientSecret = "),
    ("url-encoded inside a query", f"/cb?next=%2Flogin%3Fpassword%3D{SECRET}%26user%3Da", "secret-parameter",
     "%26user%3Da"),
] + [(f"pem {kind}", "before\n" + _pem(kind) + "after\n", "private-key",
      f"before\n{PRIVATE_KEY_MARKER}\nafter")
     for kind in PEM_KINDS] + [
    ("pem escaped in json", json.dumps({"key": _pem("PRIVATE KEY"), "alias": "a"}), "private-key",
     '"alias": "a"'),
]


@pytest.mark.parametrize(("text", "rule", "kept"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_masks_its_secret(text: str, rule: str, kept: str) -> None:
    # Given a text holding a secret in one rule's form
    # When it is redacted
    out, found = redact_text(text, "f.txt")
    # Then the secret is gone, the text around it stays, and the rule is recorded
    assert SECRET not in out
    assert kept in out
    assert rule in {r.rule for r in found}
    assert all(r.file == "f.txt" and r.count >= 1 for r in found)


KEPT = [
    ("keystore document", json.dumps({"aliases": [{"aliasName": "a", "cert": "a-cert", "key": "a-key"}],
                                      "certs": ["a-cert"], "keys": ["a"], "name": "ks"})),
    ("ssl info", "<SSLInfo><KeyStore>ref://myKeystoreRef</KeyStore><KeyAlias>myKey</KeyAlias></SSLInfo>"),
    ("mp log line", ("2017-10-23 05:28:57,813 org:o env:e api:p rev:1 messageid:m NIOThread@0 ERROR "
                    "HTTP.CLIENT - HTTPClient$Context.handshakeFailed() : "
                    "SSLClientChannel[C:10.1.1.1:443 Remote host:10.2.2.2:8443]"
                    "@65461 handshake failed, message: Received fatal alert: bad_certificate")),
    ("certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    ("token type", "token_type=bearer expires_in=3600"),
    ("null secret", '{"client_secret": null, "token": true}'),
    ("url without password", "https://user@host/x and http://10.0.0.1:8080/v1/o"),
    ("json literals under header names", '{"cookie": 1, "Authorization": null, "set-cookie": true}'),
    ("words holding pass", "bypass=true compass=north passed=12 KeyAlias=myKey secretRef=s1"),
]


@pytest.mark.parametrize("text", [c[1] for c in KEPT], ids=[c[0] for c in KEPT])
def test_diagnosis_inputs_are_kept(text: str) -> None:
    # Given text the diagnosis needs (keystore/alias names, SSLInfo, log lines with IPs, certificates)
    # When it is redacted
    out, found = redact_text(text, "f")
    # Then nothing changes
    assert (out, found) == (text, [])


def test_redactions_are_recorded_by_line() -> None:
    # Given three secrets on lines 2 and 4, and a PEM block on lines 5-8
    text = (f"a\nAuthorization: Bearer {SECRET}\nb\npassword={SECRET} token={SECRET}\n"
            + _pem("EC PRIVATE KEY") + "z\n")
    # When redacted
    out, found = redact_text(text, "hosts/mp1/commands.log")
    # Then each is recorded once per rule and line (in the file as written), and the PEM block became one line
    assert found == [
        Redaction("hosts/mp1/commands.log", "authorization", 2, 1),
        Redaction("hosts/mp1/commands.log", "secret-parameter", 4, 2),
        Redaction("hosts/mp1/commands.log", "private-key", 5, 1),
    ]
    assert out.splitlines()[4:] == [PRIVATE_KEY_MARKER, "z"]
    assert summarize_redactions(found) == {"authorization": 1, "private-key": 1, "secret-parameter": 2}
    assert found[0].to_json() == {
        "file": "hosts/mp1/commands.log", "rule": "authorization", "line": 2, "count": 1,
    }


def test_redacted_json_stays_json() -> None:
    # Given a trace-like JSON document with secrets in several forms
    doc = {"point": [{"results": [{"headers": [{"name": "Authorization", "value": f"Bearer {SECRET}"}],
                                   "properties": {"property": [{"name": "request.queryparam.apikey",
                                                                "value": SECRET}]},
                                   "content": f"password={SECRET}&x=1", "passcode": 1234}]}]}
    for indent in (None, 2):
        # When redacted, compact or pretty-printed
        out, _ = redact_text(json.dumps(doc, indent=indent), "trace/t.json")
        # Then it still parses and holds no secret
        assert SECRET not in out
        assert json.loads(out)["point"][0]["results"][0]["passcode"] == "REDACTED"


_NOISE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
_SEEDED = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789",
                  min_size=12, max_size=40)
_FORMS = {
    "authorization": ["Authorization: Bearer {s}", "-H 'authorization: Basic {s}'",
                      '"Authorization": "Bearer {s}"', "using bearer {s} now"],
    "header-property": ['{{"name": "Authorization",\n "value": "{s}"}}',
                        '{{"name":"set-cookie","value":"{s}"}}', '<Header name="x-api-key">{s}</Header>'],
    "cookie": ["Cookie: a={s}", "Set-Cookie: b={s}; Path=/", "-b 'c={s}'"],
    "curl-user": ["-u user:{s}", "--user 'me:{s}'"],
    "url-credentials": ["https://u:{s}@h.example.com/x"],
    "secret-parameter": ["?password={s}&a=b", '"client_secret": "{s}"', "token: {s}", "--token {s}",
                         "apikey={s}"],
    "jwt": ["eyJhbGciOiJIUzI1NiJ9.eyJ{s}.abc", "x eyJ0eXAiOiJKV1QifQ.eyJzdWIi.{s}"],
    "secret-format": ["slack xoxb-1234-{s}", "token glpat-{s}abcdefghij"],
    "private-key": ["-----BEGIN RSA PRIVATE KEY-----\n{s}\n-----END RSA PRIVATE KEY-----"],
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=_NOISE, suffix=_NOISE, secret=_SEEDED,
       form=st.sampled_from([(rule, f) for rule, forms in _FORMS.items() for f in forms]))
def test_seeded_secret_never_survives(prefix: str, suffix: str, secret: str, form: tuple[str, str]) -> None:
    # Given a secret in one rule's form, on a line of random text: the form starts its line, because noise
    # right before it can make it another rule's form (`-b apikey=…` is a curl cookie, and is redacted as one)
    rule, template = form
    assume(secret.lower() not in f"{prefix}\n{template} {suffix}".lower())
    text = f"{prefix}\n{template.format(s=secret)} {suffix}"
    # When redacted
    out, found = redact_text(text, "f")
    # Then the secret is gone and its rule recorded
    assert secret not in out
    assert rule in {r.rule for r in found}


def test_every_rule_has_forms_in_the_property_test() -> None:
    assert set(_FORMS) == set(RULES)


def test_stream_redacts_long_lines_in_bounded_pieces() -> None:
    # Given a multi-megabyte one-line JSON (a compact trace) with secrets near every piece boundary
    item = '{"name": "Authorization", "value": "Bearer ' + SECRET + '"}, {"pad": "' + "x" * 997 + '"}, '
    line = "[" + item * (3 * PIECE_BYTES // len(item)) + "{}]"
    src = io.BytesIO((line + "\nnext password=" + SECRET + "\n").encode())
    dst = io.BytesIO()
    # When streamed
    found = redact_stream(src, dst, "trace/t.json")
    # Then no secret survives, the JSON still parses, and line numbers count real lines
    out = dst.getvalue().decode()
    assert SECRET not in out
    first, second, _ = out.split("\n")
    assert json.loads(first)[0] == {"name": "Authorization", "value": "REDACTED"}
    assert second == "next password=REDACTED"
    assert {(r.rule, r.line) for r in found} >= {("header-property", 1), ("secret-parameter", 2)}


def test_stream_keeps_bytes_that_are_not_utf8() -> None:
    # Given latin-1 bytes and a secret
    data = b"caf\xe9 token=" + SECRET.encode() + b" \xff\xfe end\n"
    dst = io.BytesIO()
    # When streamed
    redact_stream(io.BytesIO(data), dst, "f")
    # Then only the secret changed
    assert dst.getvalue() == b"caf\xe9 token=REDACTED \xff\xfe end\n"


def test_records_are_capped_per_rule() -> None:
    # Given more lines with a secret than the cap
    text = "".join(f"password={SECRET}{i}\n" for i in range(MAX_LINES_PER_RULE + 50))
    # When redacted
    _, found = redact_text(text, "f")
    # Then the first lines are recorded one by one and the rest summed on line 0
    assert len(found) == MAX_LINES_PER_RULE + 1
    assert found[0] == Redaction("f", "secret-parameter", 0, 50)
    assert sum(r.count for r in found) == MAX_LINES_PER_RULE + 50


def test_capture_bytes_are_kept() -> None:
    # Given a pcap whose payload holds text that looks like a secret
    pcap = b"\xd4\xc3\xb2\xa1" + b"\x02\x00\x04\x00" + b"\x00" * 16 + f"password={SECRET}".encode()
    # When redacted as bytes
    # Then it is returned untouched (captures need their bytes and IPs)
    assert redact_bytes(pcap, "hosts/mp1/capture.pcap") == (pcap, [])


def _zip(members: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()


def test_proxy_bundle_zip_is_rewritten_without_secrets() -> None:
    # Given a proxy bundle with a key file, a PEM holding a key and a certificate, and a policy with
    # a password
    data = _zip({
        "apiproxy/p.xml": "<APIProxy name='p'/>",
        "apiproxy/resources/jsc/client.key": _pem("RSA PRIVATE KEY"),
        "apiproxy/resources/keys.p12": b"\x30\x82\x01\x00binary",
        "apiproxy/resources/chain.pem": (_pem("PRIVATE KEY")
                                         + "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        "apiproxy/policies/BA.xml": (f"<BasicAuthentication><Password>{SECRET}</Password>"
                                     "</BasicAuthentication>"),
    })
    # When redacted
    out, found = redact_bytes(data, "edge/proxy-bundle.zip")
    # Then key files are dropped, the PEM key block and the password are gone, the rest is kept, all recorded
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        names = zf.namelist()
        assert names == ["apiproxy/p.xml", "apiproxy/resources/chain.pem", "apiproxy/policies/BA.xml"]
        assert "BEGIN CERTIFICATE" in zf.read("apiproxy/resources/chain.pem").decode()
        assert all(SECRET.encode() not in zf.read(n) for n in names)
    assert {(r.file, r.rule) for r in found} == {
        ("edge/proxy-bundle.zip!apiproxy/resources/jsc/client.key", RULE_KEY_FILE),
        ("edge/proxy-bundle.zip!apiproxy/resources/keys.p12", RULE_KEY_FILE),
        ("edge/proxy-bundle.zip!apiproxy/resources/chain.pem", "private-key"),
        ("edge/proxy-bundle.zip!apiproxy/policies/BA.xml", "secret-parameter"),
    }


def test_clean_zip_is_returned_byte_for_byte() -> None:
    data = _zip({"apiproxy/p.xml": "<APIProxy/>"})
    assert redact_bytes(data, "edge/proxy-bundle.zip") == (data, [])


def test_broken_zip_is_refused() -> None:
    # Given bytes that start like a zip but are not one
    # When redacted
    # Then it is refused (an archive that cannot be checked for keys never enters the bundle)
    with pytest.raises(BundleError, match="edge/proxy-bundle.zip: not a readable zip archive"):
        redact_bytes(b"PK\x03\x04garbage", "edge/proxy-bundle.zip")


def test_tar_and_gzip_members_are_redacted() -> None:
    # Given a tar.gz holding a log with a token, an SSH private key and a symlink
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in (("logs/system.log", f"token={SECRET}\n"), ("home/.ssh/id_rsa", "KEY")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content.encode()))
        link = tarfile.TarInfo("logs/key-link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/ssl/private/key.pem"
        tar.addfile(link)
    # When redacted
    out, found = redact_bytes(gzip.compress(raw.getvalue()), "hosts/mp1/extra.tar.gz")
    # Then the log is masked, the key and the link are gone
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out))) as tar:
        assert tar.getnames() == ["logs/system.log"]
        assert tar.extractfile("logs/system.log").read() == b"token=REDACTED\n"  # type: ignore[union-attr]
    assert {r.rule for r in found} == {"secret-parameter", RULE_KEY_FILE}


def test_gzip_text_is_redacted_and_recompressed() -> None:
    out, found = redact_bytes(gzip.compress(f"a\nAuthorization: Basic {SECRET}\n".encode()),
                              "hosts/h/system.log.gz")
    assert gzip.decompress(out) == b"a\nAuthorization: Basic REDACTED\n"
    assert found == [Redaction("hosts/h/system.log.gz", "authorization", 2, 1)]


def test_binary_files_get_every_rule() -> None:
    # Given a file that looks binary (NUL bytes first) holding a PEM key and a password (issue 16: a NUL byte
    # in a log's first 8 KB once switched every rule but the PEM one off)
    data = b"\x00\x01bin password=gone " + _pem("EC PRIVATE KEY").encode() + b"\x00tail"
    # When redacted
    out, found = redact_bytes(data, "x.bin")
    # Then the key block and the password are both gone, and the other bytes stay as they were
    assert SECRET.encode() not in out and b"gone" not in out and out.endswith(b"\x00tail")
    assert out.startswith(b"\x00\x01bin password=REDACTED ")
    assert {r.rule for r in found} == {"private-key", "secret-parameter"}


def test_hostile_shapes_are_handled() -> None:
    # Given shapes that make naive patterns backtrack: a very long dotted name, many names without a value,
    # and a sensitive name whose value is far away on the same line
    dotted = '{"name": "' + "a." * 20000 + 'authorization", "value": "' + SECRET + '"}\n'
    valueless = '"name": "authorization", ' * 20000 + "\n"
    far = '{"name": "Cookie", "pad": "' + "x" * 5000 + '", "value": "kept"}\n'
    tags = "<name='" * 20000 + "\n"
    # When redacted
    out, found = redact_text(dotted + valueless + far + tags, "trace/t.json")
    # Then the near value is masked, nothing else changes, and it all finishes
    assert SECRET not in out
    assert out.split("\n")[1:] == [valueless.rstrip("\n"), far.rstrip("\n"), tags.rstrip("\n"), ""]
    assert [(r.rule, r.line) for r in found] == [("header-property", 1)]


def test_cut_gzip_text_is_redacted_as_far_as_it_goes() -> None:
    # Given a gzip'd log cut short by a transfer, with a token before the cut
    whole = gzip.compress((f"token={SECRET}\n" + "".join(f"line {i}\n" for i in range(2000))).encode())
    cut = whole[: len(whole) * 2 // 3]
    # When redacted
    out, found = redact_bytes(cut, "hosts/mp1/system.log.gz")
    # Then what could be read is kept redacted, and a note says the rest is missing
    text = gzip.decompress(out).decode()
    assert SECRET not in text and "token=REDACTED" in text
    assert text.endswith("[apigee-collector: the compressed file ended early; the rest of it is missing]\n")
    assert found and {r.rule for r in found} == {"secret-parameter"}


def test_unreadable_gzip_is_refused() -> None:
    # Given bytes that only start like gzip
    # When redacted
    # Then they are refused: compressed content that cannot be checked never enters the bundle
    with pytest.raises(BundleError, match="not a readable gzip file"):
        redact_bytes(b"\x1f\x8b\x08\x00garbage", "hosts/mp1/system.log.gz")


def test_concatenated_gzip_members_are_all_read() -> None:
    data = gzip.compress(b"a token=one\n") + gzip.compress(b"b token=two\n") + b"\x00" * 512
    out, found = redact_bytes(data, "x.gz")
    assert gzip.decompress(out) == b"a token=REDACTED\nb token=REDACTED\n"
    assert sum(r.count for r in found) == 2


@settings(max_examples=150, deadline=None)
@given(secret=_SEEDED,
       forms=st.lists(st.sampled_from([f for forms in _FORMS.values() for f in forms]),
                      min_size=1, max_size=4),
       keys=st.lists(st.text(max_size=8), min_size=4, max_size=4),
       depth=st.integers(min_value=0, max_value=2))
def test_secrets_in_json_strings_are_masked_and_json_stays_json(
    secret: str, forms: list[str], keys: list[str], depth: int
) -> None:
    # Given a JSON document whose string values hold secrets in any rule's form (a command line, a header, a
    # request body), itself escaped `depth` times inside other documents (a trace's request content)
    assume(all(secret.lower() not in k.lower() for k in keys))
    # A secret that is part of a form's own words ('authorizatio') stays visible in them, rightly.
    assume(all(secret.lower() not in form.format(s="").lower() for form in forms))
    document: object = {k: form.format(s=secret) for k, form in zip(keys, forms, strict=False)}
    for _ in range(depth):
        document = {"content": json.dumps(document)}
    for indent in (None, 2):
        text = json.dumps(document, indent=indent)
        # When redacted
        out, _ = redact_text(text, "trace/t.json")
        # Then no secret is left and every level still parses
        assert secret not in out
        value: object = json.loads(out)
        for _ in range(depth):
            value = json.loads(value["content"])  # type: ignore[index]


# --- issue 16: redaction never depends on a file looking like text, nor on where a long line is cut ------

_LOG = f"x password={SECRET}\nAuthorization: Basic {SECRET}==\nok eyJhbGciOiJIUzI1NiJ9.eyJ{SECRET}.sig\n"
BYPASSES = [
    # (case id, bytes given to the writer, bundle path)
    ("nul bytes first", b"\x00" * 200 + b"\n" + _LOG.encode(), "hosts/mp1/system.log"),
    ("nul bytes first, gzip", gzip.compress(b"\x00" * 200 + b"\n" + _LOG.encode()),
     "hosts/mp1/system.log.gz"),
    ("nul bytes on the secret's line", b"\x00\x00\x00\x00" + _LOG.encode(), "hosts/mp1/system.log.excerpt"),
    ("utf-16le", _LOG.encode("utf-16-le"), "hosts/mp1/system.log"),
    ("utf-16 with bom", _LOG.encode("utf-16"), "trace/t.json"),
    ("utf-32be", _LOG.encode("utf-32-be"), "edge/deployments.json"),
    ("words broken by nul", _LOG.replace("password", "pass\x00word").encode(), "hosts/mp1/system.log"),
    ("starts like a pcap", b"\xd4\xc3\xb2\xa1" + _LOG.encode(), "hosts/mp1/system.log"),
    ("starts like a pcap, gzip", gzip.compress(b"\x0a\x0d\x0d\x0a" + _LOG.encode()),
     "hosts/mp1/system.log.gz"),
    ("gzip in gzip", gzip.compress(gzip.compress(_LOG.encode())), "hosts/mp1/system.log.gz"),
    ("gzip in gzip in gzip", gzip.compress(gzip.compress(gzip.compress(_LOG.encode()))), "edge/x.json"),
    ("zip member with nul bytes", _zip({"apiproxy/resources/jsc/a.js": b"\x00\x01" + _LOG.encode()}),
     "edge/proxy-bundle.zip"),
]


@pytest.mark.parametrize(("data", "path"), [c[1:] for c in BYPASSES], ids=[c[0] for c in BYPASSES])
def test_no_shape_of_a_file_switches_redaction_off(data: bytes, path: str) -> None:
    # Given a file whose secrets hide behind NUL bytes, another encoding, a misleading magic number or layers
    # of compression
    # When it is redacted as a whole and streamed
    whole, found = redact_bytes(data, path)
    streamed = io.BytesIO()
    redact_seekable(io.BytesIO(data), streamed, path)
    # Then no secret survives in any form, however the result is opened
    for out in (whole, streamed.getvalue()):
        for view in _views(out):
            for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
                assert SECRET.encode(encoding) not in view, (encoding, view[:300])
            assert SECRET.encode() not in view.replace(b"\x00", b"")
    assert found


def _views(data: bytes) -> list[bytes]:
    """The bytes, and every gzip layer and zip member inside them."""
    views = [data]
    while data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
        views.append(data)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            views += [zf.read(n) for n in zf.namelist()]
    return views


@pytest.mark.parametrize("shift", range(-36, 36, 9))
@pytest.mark.parametrize(("form", "secret"), [
    (f"password={SECRET}", SECRET), (f"Authorization: Bearer {SECRET}", SECRET),
    (f'"name": "Cookie", "value": "{SECRET}"', SECRET), (f"-u ops:{SECRET}", SECRET),
    ("key AKIA2E0A8F3B244C9986 used", "AKIA2E0A8F3B244C9986"), (f"aws_secret_access_key = {SECRET}", SECRET),
])
def test_long_lines_are_never_cut_through_a_secret(shift: int, form: str, secret: str) -> None:
    # Given lines longer than a piece, with a secret placed around where a naive cut would fall
    pad = "A " * ((PIECE_BYTES + shift - len(form) // 2) // 2)
    data = (pad + form + " " + "B " * (PIECE_BYTES // 2) + "\n").encode()
    # When streamed
    out = io.BytesIO()
    redact_stream(io.BytesIO(data), out, "f")
    # Then the secret is masked and the line kept whole
    assert secret.encode() not in out.getvalue()
    assert out.getvalue().count(b"\n") == 1


def test_a_line_too_long_to_redact_safely_is_replaced_by_a_note() -> None:
    # Given a line beyond the longest redactable one, with no safe place to cut, and a secret on the next line
    from collector.bundle.pieces import MAX_LINE_BYTES

    data = b"x" * (MAX_LINE_BYTES + 10) + f" password={SECRET}\nnext token={SECRET}\n".encode()
    # When streamed
    out = io.BytesIO()
    found = redact_stream(io.BytesIO(data), out, "hosts/mp1/system.log")
    # Then that line is a note, the next is redacted, and both are recorded
    assert out.getvalue().splitlines() == [
        b"[apigee-collector: a line of %d bytes was removed here: too long to redact safely]" % (
            MAX_LINE_BYTES + 10 + len(f" password={SECRET}")),
        b"next token=REDACTED"]
    assert [(r.rule, r.line) for r in found] == [("line-too-long", 1), ("secret-parameter", 2)]


UNREDACTABLE = [
    ("gzip nested too deep", "deep", "levels deep"),
    ("zip member too large once inflated", "zip-bomb", "bytes left to check"),
    ("gzip garbage", "garbage", "not a readable gzip file"),
]


def _unredactable(kind: str) -> bytes:
    if kind == "deep":
        data = _LOG.encode()
        for _ in range(6):
            data = gzip.compress(data)
        return data
    if kind == "zip-bomb":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("apiproxy/resources/big.txt", b"\0" * (300 * 1024 * 1024))
        return out.getvalue()
    return b"\x1f\x8b\x08\x00garbage"


@pytest.mark.parametrize(("kind", "message"), [c[1:] for c in UNREDACTABLE], ids=[c[0] for c in UNREDACTABLE])
def test_files_that_cannot_be_redacted_safely_are_refused(kind: str, message: str) -> None:
    # Given a file that cannot be checked for secrets within the limits
    data = _unredactable(kind)
    # When redacted, whole or streamed
    # Then it is refused with an error naming the file (it never enters the bundle as is)
    with pytest.raises(BundleError, match=f"edge/x.gz: .*{message}"):
        redact_bytes(data, "edge/x.gz")
    with pytest.raises(BundleError, match=f"edge/x.gz: .*{message}"):
        redact_seekable(io.BytesIO(data), io.BytesIO(), "edge/x.gz")
