"""Portable SQL translated once per engine; later calls only fill in the parameter values.

A detector runs the same statement hundreds of times with other values (one
per candidate hour or host). Parsing, binding and translating it with sqlglot
each time costs milliseconds per call, as much as a small query itself. So
each statement is translated once with its `:name` placeholders replaced by
sentinels, and a call joins the translated text with its values rendered as
literals of the engine's dialect.

The first call for a statement and a given set of parameter types goes the
full way (`bind` + `translate`) only: most statements of a daily run are
run once, and making a template costs another parse and translation. The
second call makes the template and compares it with the full way: only if
both texts are identical is the template used afterwards, so the fast path
can never run SQL that differs from what binding the tree would have produced.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import sqlglot
from sqlglot import exp

SENTINEL = "necoma_param_{}_"
_SEEN_ONCE = object()
_SPLIT = re.compile(r"necoma_param_(\d+)_")


class Template:
    """Translated text split at the placeholders: chunks[0] v0 chunks[1] v1 ... chunks[n]."""

    def __init__(self, chunks: list[str], names: list[str]) -> None:
        self.chunks, self.names = chunks, names

    def fill(self, params: Mapping[str, Any], render: Callable[[Any], str]) -> str:
        out = [self.chunks[0]]
        for name, chunk in zip(self.names, self.chunks[1:]):
            out += [render(params[name]), chunk]
        return "".join(out)


def make_template(sql: str, dialect: str, translate: Callable[[exp.Expression], str]) -> Template | None:
    """The template of `sql`, or None when its placeholders cannot be told apart in the output."""
    if _SPLIT.search(sql):
        return None
    tree = sqlglot.parse_one(sql, read=dialect)
    names: list[str] = []

    def sentinel(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            names.append(node.name)
            return exp.column(SENTINEL.format(len(names) - 1))
        return node

    text = translate(tree.transform(sentinel))
    parts = _SPLIT.split(text)
    chunks, order = parts[0::2], [int(i) for i in parts[1::2]]
    if sorted(order) != list(range(len(names))):  # a sentinel dropped or duplicated by the generator
        return None
    return Template(chunks, [names[i] for i in order])


def kind(value: Any) -> Any:
    """What the rendering of a literal depends on, beside its value."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return (type(value).__name__, bool(value), tuple(sorted({type(v).__name__ for v in value})))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (type(value).__name__, value < 0)
    return type(value).__name__


class Templates:
    """Per engine: statement and parameter types -> Template, or False when the full path must be taken
    (`_SEEN_ONCE` until the statement's second call)."""

    def __init__(self, dialect: str, translate: Callable[[exp.Expression], str],
                 render: Callable[[Any], str], full: Callable[[str, Mapping[str, Any]], str]) -> None:
        self.dialect, self.translate, self.render, self.full = dialect, translate, render, full
        self._cache: dict[tuple, Template | bool | object] = {}

    def native(self, sql: str, params: Mapping[str, Any]) -> str:
        key = (sql, tuple(sorted((k, kind(v)) for k, v in params.items())))
        tpl = self._cache.get(key)
        if isinstance(tpl, Template):
            return tpl.fill(params, self.render)
        slow = self.full(sql, params)  # raises on bad SQL or missing parameters, as before
        if tpl is None:
            self._cache[key] = _SEEN_ONCE
        elif tpl is _SEEN_ONCE:
            try:
                made = make_template(sql, self.dialect, self.translate)
                ok = made is not None and all(n in params for n in made.names) and made.fill(params, self.render) == slow
            except Exception:  # the full path worked: never fail because of the shortcut
                made, ok = None, False
            self._cache[key] = made if ok else False
        return slow
