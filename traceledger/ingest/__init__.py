"""Capture: from a signed document to durable log entries, and the index beside them."""
