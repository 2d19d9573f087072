"""Exchange: the store of shared STIX objects, its sharing rules, and the TAXII 2.1 service in front of it."""
