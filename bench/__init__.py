"""Benchmarks (not part of the test suite). Each runs as a module from the repository root, e.g.
`.venv/bin/python -m bench.analyze --help`, so `collector`, `tests` and `bench` import from the repository
without any sys.path setup."""
