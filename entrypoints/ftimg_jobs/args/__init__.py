"""Argument classes grouped by concern, the one parser, and the one place that checks combinations."""
