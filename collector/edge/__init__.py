"""Management API: the client (the only network boundary here), pure document parsers, resolution and trace."""
