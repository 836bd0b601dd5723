"""apigee-collector: diagnose the TLS failures between Apigee Edge MPs and backends behind a 503."""

__version__ = "0.1.0"
