"""For inspectors and regulators: origin and forward trace, recalls, risk catalogs,
port sampling, EPCIS queries and exports."""
