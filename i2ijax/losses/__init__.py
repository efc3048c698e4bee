"""Losses as plain, jit-friendly functions (no state, no I/O)."""
