"""Captures and TLS, parsed without touching the network:
`capture.read_handshakes`, `keylog`, `certificates`."""
