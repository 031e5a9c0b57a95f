"""Renderers: tables, text and documents built from records (presentation last)."""
