"""Remote command builders: pure and table-driven; hostile names and ids always arrive as single arguments."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.inventory import InventoryHost
from collector.remote import commands
from collector.remote.connection import ConnectionSettings, open_host

HOSTILE = [
    "a'b",
    'a"b',
    "$(reboot)",
    "`id`",
    "x; rm -rf /",
    "a b",
    "--help",
    "-e",
    "*",
    "~root",
    "\\",
    "%s",
    "a|b",
    "a&&b",
    "é-ünï",
    "'; exec sh; '",
]


@pytest.mark.parametrize(
    ("addresses", "port", "expected"),
    [
        (["10.0.1.5"], None, ["(", "host", "10.0.1.5", ")"]),
        (
            ["10.0.1.5", "10.0.1.6"],
            443,
            ["(", "host", "10.0.1.5", "or", "host", "10.0.1.6", ")", "and", "port", "443"],
        ),
        (["10.0.1.5", "10.0.1.5"], None, ["(", "host", "10.0.1.5", ")"]),  # duplicates once
        (["fe80::1"], 8443, ["(", "host", "fe80::1", ")", "and", "port", "8443"]),
        (["backend.example.com"], None, ["(", "host", "backend.example.com", ")"]),
    ],
)
def test_capture_filter(addresses: list[str], port: int | None, expected: list[str]) -> None:
    # Given peer addresses and maybe a port / When the filter is built / Then tcpdump's words, one per arg
    assert commands.capture_filter(addresses, port) == expected


@pytest.mark.parametrize(
    ("addresses", "port"),
    [
        ([], None),
        (["10.0.0.1 or host 8.8.8.8"], None),
        (["$(id)"], None),
        (["-w/etc/passwd"], None),
        (["10.0.0.1"], 0),
        (["10.0.0.1"], 70000),
    ],
)
def test_capture_filter_rejects(addresses: list[str], port: int | None) -> None:
    # Given something that is not an address (or port) / When the filter is built / Then it is refused
    with pytest.raises(ValueError):
        commands.capture_filter(addresses, port)


@pytest.mark.parametrize(
    ("capture_dir", "run_id", "host", "expected"),
    [
        ("/tmp", "20261127T1000Z-ab12", "mp1", "/tmp/apigee-collector-20261127T1000Z-ab12-mp1"),
        ("/var/tmp/", "r1", "mp 1;rm", "/var/tmp/apigee-collector-r1-mp_1_rm"),
        ("/", "r1", "../../etc", "/apigee-collector-r1-.._.._etc"),
    ],
)
def test_run_dir(capture_dir: str, run_id: str, host: str, expected: str) -> None:
    # Given a capture dir, run id and host name / When the run dir is named / Then one safe path component
    assert commands.run_dir(capture_dir, run_id, host) == expected


@pytest.mark.parametrize("run_id", ["", "a b", "x;y", "-rf", "a" * 65, "../x"])
def test_run_id_must_be_a_plain_token(run_id: str) -> None:
    with pytest.raises(ValueError):
        commands.check_run_id(run_id)


@pytest.mark.parametrize(
    ("builder", "fixed_words"),
    [
        (
            lambda: commands.start_capture(
                "/tmp", "/tmp/d", "tcpdump", ["(", "host", "10.0.0.1", ")"], 60, 500, 5
            ),
            [
                "collector-start-capture",
                "/tmp",
                "/tmp/d",
                "tcpdump",
                "60",
                "100",
                "5",
                "(",
                "host",
                "10.0.0.1",
                ")",
            ],
        ),
        (lambda: commands.check_capture("/tmp/d"), ["collector-check-capture", "/tmp/d"]),
        (
            lambda: commands.stop_capture("/tmp/d", "r1", "apigee", 5, 4),
            ["collector-stop-capture", "/tmp/d", "r1", "apigee", "5", "4"],
        ),
        (lambda: commands.remove_run_dir("/tmp/d-r1", "r1"), ["collector-remove-run-dir", "/tmp/d-r1", "r1"]),
        (lambda: commands.list_logs("/x/system.log"), ["collector-list-logs", "/x/system.log"]),
        (
            lambda: commands.excerpt_logs(["/x/a.gz", "/x/a"], ["id1", "id2"], 20),
            ["collector-excerpt-logs", "20", "2", "id1", "id2", "/x/a.gz", "/x/a"],
        ),
        (
            lambda: commands.stream_logs(["/x/a.gz", "/x/a"], 100),
            ["collector-stream-logs", "100", "/x/a.gz", "/x/a"],
        ),
        (lambda: commands.gather_facts("tcpdump", "/tmp"), ["collector-facts", "tcpdump", "/tmp"]),
    ],
)
def test_scripts_take_every_variable_as_an_argument(builder, fixed_words: list[str]) -> None:  # type: ignore[no-untyped-def]
    # Given a builder / When it builds its argv / Then it is `sh -c <constant script> <name> <variables...>`
    argv = builder()
    assert argv[:2] == ["sh", "-c"]
    assert argv[3:] == fixed_words


_SCRIPTS_DIR = Path(commands.__file__).parent / "scripts"


def test_run_dir_functions_have_one_copy() -> None:
    # Given run-dir.sh, the shell functions of the run dir (its trust check among them)
    library = (_SCRIPTS_DIR / "run-dir.sh").read_text(encoding="utf-8")
    functions = re.findall(r"^([a-z_]+)\(\) \{$", library, re.MULTILINE)
    assert {"trusted_run_dir", "find_tcpdump", "received"} <= set(functions)
    # Then it runs nothing by itself: at its top level only comments, function heads and their closing braces
    top_level = [line for line in library.splitlines() if line and not line[0].isspace()]
    assert all(re.match(r"^(#|[a-z_]+\(\) \{$|\}$)", line) for line in top_level), top_level
    # And no other host script defines one of them again
    defined_again = re.compile(rf"^\s*({'|'.join(functions)})\s*\(\)", re.MULTILINE)
    for script in _SCRIPTS_DIR.glob("*.sh"):
        if script.name != "run-dir.sh":
            assert not defined_again.search(script.read_text(encoding="utf-8")), script.name
    # And each script that calls them is sent after it (one newline between, as the role joins them)
    for argv in (commands.check_capture("/d"), commands.stop_capture("/d", "r1", "u"),
                 commands.remove_run_dir("/d-r1", "r1")):
        assert argv[2].startswith(library.rstrip() + "\n# Run as `sh -c SCRIPT NAME ARGS...`"), argv[3]


@pytest.mark.parametrize("bad_id", ["", "a\nb", "x\0y"])
def test_excerpt_refuses_ids_grep_would_split(bad_id: str) -> None:
    with pytest.raises(ValueError):
        commands.excerpt_logs(["/x/system.log"], [bad_id], 5)


@pytest.mark.parametrize(
    ("password", "expected"), [(False, ["sudo", "-n", "--"]), (True, ["sudo", "-S", "-p", "", "--"])]
)
def test_sudo_prefix(password: bool, expected: list[str]) -> None:
    assert commands.sudo_prefix(password) == expected


_SCRIPTS = (commands._START_CAPTURE, commands._EXCERPT_LOGS, commands._FACTS, commands._LIST_LOGS)
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n"), min_size=1, max_size=40
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.lists(_TEXT, min_size=1, max_size=3), log=_TEXT, tcpdump=_TEXT, host=_TEXT)
def test_hostile_values_come_out_quoted(ids: list[str], log: str, tcpdump: str, host: str) -> None:
    # Given any message ids, paths and host names / When commands are built and rendered for the remote shell
    directory = commands.run_dir("/tmp", "r1", host)
    for argv in (
        commands.excerpt_logs([log, log + ".1.gz"], ids, 3),
        commands.list_logs(log),
        commands.start_capture("/tmp", directory, tcpdump, ["(", "host", "10.0.0.1", ")"], 5, 5),
        commands.gather_facts(tcpdump, log),
    ):
        line = commands.render(argv)
        # Then a POSIX shell splits the line back into exactly the same arguments (nothing is interpreted)
        assert shlex.split(line) == argv
        # and the script is the constant one: no value was pasted into it
        assert argv[2] in _SCRIPTS


@pytest.mark.lab
def test_hostile_values_reach_the_host_unchanged(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given hostile org/proxy/host strings and message ids, sent through the real remote shell
    with open_host(mp1, settings, tmp_path / "commands.log") as connection:
        result = connection.run(["printf", "%s\\0", *HOSTILE])
        marker = tmp_path / "pwned"
        connection.run(
            commands.excerpt_logs([str(mp1.system_log)], [f"x'; touch {marker}; echo '"], 1), check=False
        )
    # Then every one arrived as exactly one argument, byte for byte, and nothing ran
    assert result.stdout.split("\0")[:-1] == HOSTILE
    assert not marker.exists()
    assert commands.render(["printf", "%s\\0", *HOSTILE]) in (tmp_path / "commands.log").read_text()
