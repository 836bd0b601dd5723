"""The console entry point: Ctrl-C while the command line is still loading exits 130 with one line."""

from __future__ import annotations

import subprocess
import sys

# A finder that interrupts the import of collector.cli, as a Ctrl-C during the first second of `collect` does.
_INTERRUPT_LOAD = """
import sys


class Interrupt:
    def find_spec(self, name, path, target=None):
        if name == "collector.cli":
            raise KeyboardInterrupt
        return None


sys.meta_path.insert(0, Interrupt())
from collector.entry import main

main()
"""


def test_ctrl_c_while_loading_exits_130_without_a_traceback() -> None:
    # Given a Ctrl-C that lands while the commands are being loaded, When collect starts
    done = subprocess.run([sys.executable, "-c", _INTERRUPT_LOAD], capture_output=True, text=True, timeout=60,
                          check=False)
    # Then the documented exit code and one line, no traceback
    assert done.returncode == 130, done.stderr
    assert done.stderr == "collect: interrupted\n"


def test_entry_point_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "collector", "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("collect, version ")
