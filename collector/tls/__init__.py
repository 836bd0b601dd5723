"""Captures and TLS, parsed without touching the network:
`capture.read_handshakes`, `keylog`, `certificates`."""

from collector.tls.compiled_reader import usable_build as _usable_build

if (_build := _usable_build()) is not None:
    # the reader's compiled modules are found before their source (collector/tls/compiled_reader.py)
    __path__.insert(0, str(_build))
