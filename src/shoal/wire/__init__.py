"""The wire: how values become bytes (codecs) and how messages are framed (header)."""
