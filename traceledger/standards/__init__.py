"""Pure GS1 / EPCIS / CBV code: GS1 keys and Digital Links, event checks, the EPCIS event
hash, JSON Schemas, DSSE envelopes and QR codes. No I/O, no database."""
