"""pytest configuration for tests/. Shared helpers live in support.py (see its docstring)."""
