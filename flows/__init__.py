"""Prefect flows of the support directory."""
