import dagster as dg

organizations = dg.DynamicPartitionsDefinition(name="organizations")
"""One partition per organization; the key is the organization's immutable id as a string."""
