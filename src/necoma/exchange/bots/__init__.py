"""Timeline bots, NECOMAtter-style: each subscribes to the post stream by regular expression, or posts what it reads.

incident bot   necoma.exchange.publish (in process: STIX + post in one transaction)
enrichment     enrichment.py: answers posts that mention an IP or domain (GeoIP/ASN, lists, lake history)
feed           feed.py: posts each new item of an RSS/Atom advisory feed once
"""
