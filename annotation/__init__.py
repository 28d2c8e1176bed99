"""Everything Label Studio: exports in, manifests out (and, later, the SDK client)."""
