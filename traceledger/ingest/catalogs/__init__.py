"""Capturing risk catalogs: the document, publishing a signed version, and the tables
the indexer derives from catalog entries of the log."""
