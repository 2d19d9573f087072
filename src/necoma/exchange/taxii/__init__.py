"""TAXII 2.1 server (FastAPI): discovery, API root, collections, objects, manifest, versions, status."""
from necoma.exchange.taxii.app import create_app

__all__ = ["create_app"]
