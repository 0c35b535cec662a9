"""HTTP routes, one module per area; gateway.app decides which a role serves."""
