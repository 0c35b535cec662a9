"""aiohttp applications and the command line for traceledger."""
