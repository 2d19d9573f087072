"""Analysis: detectors over the lake tables, their registry and shared algorithms (DGAs, ...)."""
