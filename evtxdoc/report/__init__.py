"""Renderers of an Analysis: inventory JSON, terminal summary, event exports."""
