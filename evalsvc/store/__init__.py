"""Storage, the bottom floor: URIs and S3, the record schema, run layout, control documents and reading records."""
