"""Renderers of a scenario model into the files an exporter, a resolver or a feed would produce."""
