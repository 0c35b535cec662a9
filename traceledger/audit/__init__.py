"""Independent checks: the whole stored log, and one lookup answer offline."""
