"""Helpers shared by ctop's tests (importable as ``support``; tests/ is on pytest's pythonpath)."""
