"""Command-line entry points: each module parses and validates, then makes one call into the library."""
