"""Where the engines find the lake: a plain path, a file:// URL, or a remote URL (s3a://, hdfs://, ...).

`[analyze] lake_url` may name shared storage mounted at another place than
the `[lake] path` the collectors write to. A configured location that does
not exist is an error, not an empty lake: an unmounted share must not look
like a quiet day.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from necoma.lake.engines.base import EngineError, is_url


def scheme(location: str) -> str:
    """The URL scheme in lower case, '' for a plain path."""
    return urlsplit(location).scheme.lower() if is_url(location) else ""


def local_path(location: str | Path) -> Path | None:
    """The local directory a path or file:// URL names; None for a remote URL."""
    text = str(location)
    if not is_url(text):
        return Path(text)
    parts = urlsplit(text)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise EngineError(f"lake {text}: a file:// URL names a local path (file:///mnt/lake), not the host {parts.netloc!r}")
    return Path(url2pathname(parts.path))


def require_directory(path: Path, shown: str) -> None:
    """Fail clearly when a configured lake location is missing."""
    if not path.exists():
        raise EngineError(f"the lake {shown} does not exist (is the shared storage mounted? check [analyze] lake_url)")
    if not path.is_dir():
        raise EngineError(f"the lake {shown} is not a directory (check [analyze] lake_url)")
