"""Core of traceledger: identifiers, canonical forms, crypto, the Merkle log and its store (no HTTP)."""
