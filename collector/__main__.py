"""Allow `python -m collector` as a synonym of the `collect` command."""

from collector.cli import main

main()
