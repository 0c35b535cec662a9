"""The traceledger command line."""
