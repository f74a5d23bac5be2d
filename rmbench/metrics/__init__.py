"""Metric machinery shared by every protocol: declarations (name, direction, CI method) and the one bootstrap."""
