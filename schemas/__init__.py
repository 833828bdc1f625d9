"""The field registry of the listing record and everything generated from it."""
