"""The manifest: the pure pydantic schema of what a user writes, loading and validation with field-naming errors."""
