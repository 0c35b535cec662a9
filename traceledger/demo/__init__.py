"""The demo story: a multi-party import, signed and captured like any other."""
