"""support-directory: curation pipeline for a directory of mental-health support services."""

__version__ = "0.1.0"
