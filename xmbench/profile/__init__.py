"""Profile stage: probes that measure a run while it happens."""
