"""A folder put first on a tool's PYTHONPATH by fault injection (see sitecustomize)."""
