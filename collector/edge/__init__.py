"""Management API: the client (the only network boundary here), pure parsers, resolution and trace."""
