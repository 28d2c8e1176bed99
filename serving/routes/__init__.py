"""HTTP routes, one module per resource; the logic they call lives in plain modules (engine, storage, auth)."""
