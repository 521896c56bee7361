"""Plotly figure builders: pure functions from numpy arrays to go.Figure (one module per page/topic)."""
