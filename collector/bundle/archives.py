"""What kind of bytes a bundle file holds (capture, zip, tar, gzip, binary, text), and rewriting zip/tar members."""

from __future__ import annotations

import enum
import io
import tarfile
import zipfile
from collections.abc import Callable

from collector.errors import BundleError

SNIFF_BYTES = 8192  # enough for every magic number below and for the NUL test of binary files

_PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a")
_CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
# Files that are nothing but key material: dropped whole from archives (a PEM file is redacted like text instead).
_KEY_FILE_SUFFIXES = (".key", ".p12", ".pfx", ".jks", ".jceks", ".keystore", ".bcfks", ".p8", ".pk8", ".ppk")
_KEY_FILE_NAMES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")

# A member rewriter: (member name, content) -> new content, or None to drop the member.
MemberRewriter = Callable[[str, bytes], "bytes | None"]


class FileKind(str, enum.Enum):
    """How a file's bytes are treated by redaction."""

    CAPTURE = "capture"  # pcap/pcapng: kept byte for byte at a capture path (captures need their IPs)
    ZIP = "zip"  # members rewritten (proxy bundles)
    TAR = "tar"
    GZIP = "gzip"  # the inner bytes decide
    BINARY = "binary"  # NUL bytes early on; redacted like text all the same (a crashed log is still a log)
    TEXT = "text"


def sniff_kind(head: bytes) -> FileKind:
    """The kind of a file from its first bytes (at least `SNIFF_BYTES`, or the whole file when shorter)."""
    if head[:4] in _PCAP_MAGICS:
        return FileKind.CAPTURE
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return FileKind.ZIP
    if head[:2] == b"\x1f\x8b":
        return FileKind.GZIP
    if head[257:262] == b"ustar":
        return FileKind.TAR
    if b"\x00" in head[:SNIFF_BYTES]:
        return FileKind.BINARY
    return FileKind.TEXT


def is_capture_path(rel_path: str) -> bool:
    """True for a bundle path where a capture belongs (``hosts/NAME/capture.pcap``...): only there are pcap
    bytes kept as they are. Never an archive member (``ARCHIVE!MEMBER``): a proxy bundle holds no capture."""
    return "!" not in rel_path and rel_path.lower().endswith(_CAPTURE_SUFFIXES)


def is_key_file(member: str) -> bool:
    """True for a member that is only key material (keystores, PKCS#12, raw key files, SSH private keys)."""
    base = member.rsplit("/", 1)[-1].lower()
    return base.endswith(_KEY_FILE_SUFFIXES) or base in _KEY_FILE_NAMES


def rewrite_zip(data: bytes, source: str, rewrite: MemberRewriter, *, max_member_bytes: int) -> bytes:
    """A copy of the zip with each file member passed through `rewrite` (None drops it); same names and dates.
    A member larger than `max_member_bytes` once inflated is refused before it is read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as src:
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
                for info in src.infolist():
                    if info.is_dir():
                        dst.writestr(_copy_zip_info(info), b"")
                        continue
                    _check_member_size(source, info.filename, info.file_size, max_member_bytes)
                    content = rewrite(info.filename, src.read(info))
                    if content is not None:
                        dst.writestr(_copy_zip_info(info), content)
            return out.getvalue()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError) as exc:
        raise BundleError(
            f"{source}: not a readable zip archive ({exc}); it was not written to the bundle, because an "
            "archive must be checked for private keys first"
        ) from exc


def _copy_zip_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = zipfile.ZIP_STORED if info.is_dir() else zipfile.ZIP_DEFLATED
    copy.external_attr = info.external_attr
    return copy


def rewrite_tar(data: bytes, source: str, rewrite: MemberRewriter, *, max_member_bytes: int) -> bytes:
    """A copy of the tar with each regular file passed through `rewrite` (None drops it); links are dropped.
    A member larger than `max_member_bytes` is refused before it is read."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src:
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as dst:
                for member in src:
                    if member.isdir():
                        dst.addfile(member)
                        continue
                    if not member.isfile():
                        continue  # links and devices: nothing of ours, and a link could point at a key
                    _check_member_size(source, member.name, member.size, max_member_bytes)
                    extracted = src.extractfile(member)
                    content = rewrite(member.name, extracted.read() if extracted else b"")
                    if content is None:
                        continue
                    copy = tarfile.TarInfo(member.name)
                    copy.size, copy.mtime, copy.mode = len(content), member.mtime, member.mode
                    dst.addfile(copy, io.BytesIO(content))
            return out.getvalue()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(
            f"{source}: not a readable tar archive ({exc}); it was not written to the bundle, because an "
            "archive must be checked for private keys first"
        ) from exc


def _check_member_size(source: str, member: str, size: int, limit: int) -> None:
    if size > limit:
        raise BundleError(
            f"{source}: member {member} holds {size} bytes, more than the {max(limit, 0)} bytes left to "
            "check for secrets; the archive was not written to the bundle")
