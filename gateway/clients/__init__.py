"""HTTP clients: pushing events to a ledger, asking witnesses to cosign."""
