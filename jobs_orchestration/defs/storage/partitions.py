import dagster as dg

ORGANIZATIONS = "organizations"
"""The partitions definition's name, for the instance's dynamic-partition calls."""
organizations = dg.DynamicPartitionsDefinition(name=ORGANIZATIONS)
"""One partition per organization; the key is the organization's immutable id as a string."""
