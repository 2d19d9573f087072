"""Knowledge: alerts become incidents (correlated, categorized, rated) and incidents become STIX 2.1.

    from necoma.knowledge import correlate, to_bundle
    for incident in correlate(alerts, lists=Lists.of(allow=..., deny=...)):
        print(incident.explain())
        bundle = to_bundle(incident, "my-cert", level="amber")
"""
from necoma.knowledge.correlate import CorrelationParams, correlate
from necoma.knowledge.incident import Incident, RatingTerm
from necoma.knowledge.lists import Lists
from necoma.knowledge.stix import incident_objects, to_bundle

__all__ = ["CorrelationParams", "Incident", "Lists", "RatingTerm", "correlate", "incident_objects", "to_bundle"]
