"""apigee-collector: diagnose two-way TLS 'bad_certificate' failures between Apigee Edge MPs and backends."""

__version__ = "0.1.0"
