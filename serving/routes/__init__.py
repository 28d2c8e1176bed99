"""HTTP routes, one module per resource; the logic they call lives in plain modules (service, engine, records, auth)."""
