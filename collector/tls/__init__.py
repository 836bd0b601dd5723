"""Captures and TLS, parsed without touching the network:
`capture.read_handshakes`, `keylog`, `certificates`."""

from collector.tls.compiled_reader import put_first as _put_first

_put_first(__path__)  # the reader's compiled modules before their source, when built (compiled_reader.py)
