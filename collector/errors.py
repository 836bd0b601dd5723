"""The error tree: every error the tool raises on purpose knows its exit code, its reason and where it was."""

from __future__ import annotations

from pathlib import Path

EXIT_COMPLETE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


class CollectorError(Exception):
    """Base of every error the tool raises on purpose; `cli.py` prints it as one line, exits with `exit_code`.

    `reason` is the short machine-readable word a failed step records in manifest.json; each subclass names
    its own (a subclass may set it per instance, like remote HostError's unreachable, sudo-denied...).
    """

    exit_code: int = EXIT_FAILED
    reason: str = "collector-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CollectorError):
    """Bad flags, settings or combinations of them."""

    exit_code = EXIT_USAGE
    reason = "usage"


class InputError(CollectorError):
    """A file given by the user cannot be used; the message names the file and the defect."""

    exit_code = EXIT_USAGE
    reason = "bad-input"

    def __init__(self, file: str | Path, defect: str) -> None:
        super().__init__(f"{file}: {defect}")
        self.file = str(file)
        self.defect = defect


class CaptureFormatError(InputError):
    """A capture (pcap/pcapng) is malformed or not a capture at all."""

    reason = "bad-capture"


class EdgeError(CollectorError):
    """The management API call failed; `what` names the object being fetched, `url` has no credentials."""

    reason = "edge-error"

    def __init__(self, what: str, url: str, problem: str, hint: str = "") -> None:
        text = f"{url} -> {what}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.what = what
        self.url = url
        self.problem = problem
        self.hint = hint


class EdgeAuthError(EdgeError):
    """Credentials refused (401) or not allowed (403): the user must fix them, so this is an input error."""

    exit_code = EXIT_USAGE
    reason = "credentials-refused"


class EdgeNotFoundError(EdgeError):
    """A 404 naming the missing object (org, env, proxy, revision, keystore, reference, target server)."""

    exit_code = EXIT_USAGE
    reason = "not-found"


class RemoteError(CollectorError):
    """An SSH-side step failed on one host; printed as `host -> step: what`."""

    reason = "remote-error"

    def __init__(self, host: str, step: str, problem: str) -> None:
        super().__init__(f"{host} -> {step}: {problem}")
        self.host = host
        self.step = step
        self.problem = problem


class BundleError(CollectorError):
    """The support bundle could not be written or verified."""

    reason = "bundle-error"


class ProbeError(InputError):
    """The backend could not be probed (DNS, refused, unreachable, timeout, not TLS).

    Names HOST:PORT (and the host it was probed from) and what to check.
    """

    reason = "probe-failed"  # what a failed probe step records (before reasons were typed: the class name)

    def __init__(self, target: str, problem: str, hint: str = "", via: str | None = None) -> None:
        where = f"{target} (probed from {via})" if via else target
        super().__init__(where, f"{problem}; {hint}" if hint else problem)
        self.target = target
        self.problem = problem
        self.hint = hint
        self.via = via
