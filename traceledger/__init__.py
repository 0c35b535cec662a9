"""Core of traceledger: identifiers, crypto, the Merkle log and its store (no HTTP)."""
