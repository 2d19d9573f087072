"""Domain generation algorithms: one implementation each, shared by the testbed and the detectors."""
