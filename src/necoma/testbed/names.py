"""Plausible DNS names for background traffic: popular sites, their subdomains, and NXDOMAIN noise.

A short list of globally popular names is shipped below; the long tail is
generated from syllables, so names look like brands (`tovamark.com`), not
like DGA output. Popularity is Zipf-distributed, as in real resolver logs.
"""
from __future__ import annotations

import numpy as np

POPULAR = (
    "google.com", "youtube.com", "facebook.com", "instagram.com", "wikipedia.org", "amazon.com",
    "apple.com", "microsoft.com", "bing.com", "yahoo.com", "netflix.com", "linkedin.com", "github.com",
    "whatsapp.net", "live.com", "office.com", "windowsupdate.com", "akamaiedge.net", "cloudflare.com",
    "twitter.com", "reddit.com", "zoom.us", "googleapis.com", "gstatic.com", "doubleclick.net",
    "icloud.com", "adobe.com", "dropbox.com", "spotify.com", "ubuntu.com", "debian.org", "python.org",
    "pypi.org", "stackoverflow.com", "mozilla.org", "fastly.net", "cloudfront.net", "azureedge.net",
    "slack.com", "salesforce.com", "paypal.com", "ebay.com", "bbc.co.uk", "nytimes.com", "cnn.com",
    "weather.com", "booking.com", "tiktok.com", "pinterest.com", "openai.com",
)
_SYL = ("ba", "ca", "da", "fi", "go", "ha", "ki", "lo", "ma", "ne", "no", "pa", "ra", "ri", "sa", "so",
        "ta", "to", "va", "vi", "za", "tech", "net", "mark", "soft", "line", "shop", "data", "cloud", "media",
        "news", "bank", "play", "city", "home", "link", "hub", "wise", "lab", "fast")
_TLDS = ("com",) * 12 + ("net",) * 3 + ("org",) * 3 + ("io", "de", "fr", "jp", "co.uk", "info", "eu", "us")
_SUBS = ("www", "www", "www", "", "api", "cdn", "static", "img", "login", "mail", "m", "assets", "update")
SEARCH_SUFFIXES = ("corp.example.net", "lan", "local", "home")


def popular_domains(rng: np.random.Generator, n: int) -> list[str]:
    """The shipped names, then generated brand-like names, `n` in all, most popular first."""
    out = list(POPULAR[:n])
    seen = set(out)
    while len(out) < n:
        k = int(rng.integers(2, 4))
        word = "".join(_SYL[int(i)] for i in rng.integers(0, len(_SYL), size=k))
        name = f"{word}.{_TLDS[int(rng.integers(0, len(_TLDS)))]}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def fqdn(rng: np.random.Generator, domain: str) -> str:
    sub = _SUBS[int(rng.integers(0, len(_SUBS)))]
    return f"{sub}.{domain}" if sub else domain


def typo(rng: np.random.Generator, domain: str) -> str:
    """A mistyped name (dropped, doubled or swapped letter) that does not exist."""
    label, _, rest = domain.partition(".")
    if len(label) < 3:
        return "ww" + domain
    i = int(rng.integers(1, len(label) - 1))
    op = int(rng.integers(0, 3))
    if op == 0:
        label = label[:i] + label[i + 1:]
    elif op == 1:
        label = label[:i] + label[i] + label[i:]
    else:
        label = label[:i - 1] + label[i] + label[i - 1] + label[i + 1:]
    return f"www.{label}.{rest}"


def search_suffix(rng: np.random.Generator, name: str) -> str:
    """A lookup with the resolver search list appended (a stub retrying with its suffix)."""
    return f"{name}.{SEARCH_SUFFIXES[int(rng.integers(0, len(SEARCH_SUFFIXES)))]}"


def chrome_probe(rng: np.random.Generator) -> str:
    """Chromium's intranet-redirect probe: a random 7-15 letter single label (looks DGA-like, is benign)."""
    k = int(rng.integers(7, 16))
    return "".join(chr(97 + int(c)) for c in rng.integers(0, 26, size=k))


def cdn_miss(rng: np.random.Generator) -> str:
    """A CDN edge name that no longer exists."""
    return f"e{int(rng.integers(1000, 99999))}.dsc{int(rng.integers(1, 9))}.akamaiedge.net"
