"""Counting: closed-form formulas, the analytic per-layer table, and the tool adapters."""
