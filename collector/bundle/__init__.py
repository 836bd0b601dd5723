"""The bundle stage: layout (every path), redaction, manifest, reports and packaging."""
