"""Allow `python -m collector` as a synonym of the `collect` command."""

from collector.entry import main

main()
