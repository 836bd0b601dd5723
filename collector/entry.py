"""The `collect` console entry point: a Ctrl-C while the command line is still loading is an interruption too.

Loading the commands (click, and what they import) takes a moment; a KeyboardInterrupt raised then would
otherwise escape before `cli.main` can turn it into the documented exit code 130.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from collector.cli import main as cli_main  # inside the try: loading it can be interrupted
    except KeyboardInterrupt:
        sys.stderr.write("collect: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    cli_main()
