"""Using risk catalogs: versions in force, product matches, port arrivals and auditable
sampling (the documents are captured by traceledger.ingest.catalogs)."""
