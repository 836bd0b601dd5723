"""Ansible host patterns: `mp[1:3]`, `mp[01:10]`, `be[a:c]`, strides `[1:10:2]`, and a `:port` suffix."""

from __future__ import annotations

import re
import string

# A range like mp[1:100000000] would hang the run and fill memory; no Apigee planet comes near this.
MAX_HOSTS_PER_PATTERN = 10_000

_PORT_SUFFIX = re.compile(r"^(?P<pattern>[^:\[]*(?:\[[^\]]*\][^:\[]*)*):(?P<port>\d+)$")
_RANGE = re.compile(r"\[([^\[\]]*)\]")


class HostPatternError(ValueError):
    """A host pattern Ansible would refuse too; the message says what is wrong with it."""


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """The host names `pattern` stands for, in Ansible's order, and the port it gives them (None: none).

    Each `[begin:end]` or `[begin:end:step]` is expanded left to right; a begin with a leading zero pads every
    name to its width (end must then have the same width); letters count through a-z then A-Z, as in Ansible.
    """
    port: int | None = None
    match = _PORT_SUFFIX.match(pattern)
    if match and ":" not in _RANGE.sub("", match.group("pattern")):
        pattern, port = match.group("pattern"), int(match.group("port"))
    elif pattern.endswith(":"):
        raise HostPatternError(f"host pattern {pattern!r} ends in ':' without a port")
    names = [pattern]
    while any("[" in name for name in names):
        expanded: list[str] = []
        for name in names:
            expanded += _expand_first_range(name) if "[" in name else [name]
            if len(expanded) > MAX_HOSTS_PER_PATTERN:
                raise HostPatternError(
                    f"host pattern {pattern!r} gives more than {MAX_HOSTS_PER_PATTERN} hosts"
                )
        names = expanded
    return names, port


def _expand_first_range(name: str) -> list[str]:
    match = _RANGE.search(name)
    if match is None:
        raise HostPatternError(f"host pattern {name!r} has a '[' without its ']'")
    head, tail = name[: match.start()], name[match.end() :]
    bounds = match.group(1).split(":")
    if len(bounds) not in (2, 3):
        raise HostPatternError(f"host range [{match.group(1)}] must be [begin:end] or [begin:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise HostPatternError(f"host range [{match.group(1)}] has no end")
    if not step_text.isdigit() or int(step_text) < 1:
        raise HostPatternError(f"host range [{match.group(1)}]: step {step_text!r} is not a positive number")
    step = int(step_text)
    letters = string.ascii_letters
    if len(begin) == 1 and len(end) == 1 and begin in letters and end in letters:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise HostPatternError(f"host range [{match.group(1)}] begins after its end")
        return [f"{head}{letter}{tail}" for letter in letters[first : last + 1 : step]]
    if not (begin.isdigit() and end.isdigit()):
        raise HostPatternError(f"host range [{match.group(1)}] is neither numbers nor single letters")
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise HostPatternError(f"host range [{match.group(1)}]: begin and end must have the same width")
    first, last = int(begin), int(end)
    if (last - first) // step + 1 > MAX_HOSTS_PER_PATTERN:
        raise HostPatternError(f"host range [{match.group(1)}] gives more than {MAX_HOSTS_PER_PATTERN} hosts")
    return [f"{head}{str(number).zfill(width)}{tail}" for number in range(first, last + 1, step)]
