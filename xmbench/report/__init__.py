"""Report stage: renders stored records; never runs or decides anything."""
