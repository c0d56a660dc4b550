"""Command-line flags built from config dataclasses, so every default lives in one place.

CleanRL's habit: a config is a frozen dataclass with a docstring under each
field; the CLI is generated from it. :func:`add_flags` turns the fields of a
dataclass into ``--kebab-case`` options (help text from the field's
docstring, default from the field), and :func:`from_flags` builds the
dataclass back from the parsed namespace. Nested config dataclasses are
filled from their own flags (optionally prefixed).

Supported field types: ``int``, ``float``, ``str``, ``bool`` (``--flag`` /
``--no-flag``) and their ``X | None`` forms.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import re
import textwrap
import types
import typing
from typing import Any, Callable


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (first sentence kept whole)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = plain_text(after.value.value)
    return docs


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(doc: str) -> str:
    """A docstring as ``--help`` shows it: one line, reStructuredText roles and literals as plain words."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], doc)
    return " ".join(_LITERAL.sub(r"\1", text).split())


def _base_type(hint: Any) -> tuple[type, bool]:
    """``(int, True)`` for ``int | None``; ``(int, False)`` for ``int``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def _parser_for(kind: type, optional: bool, name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name.replace('_', '-')}: {text!r} is not a valid {kind.__name__}") from None

    parse.__name__ = kind.__name__
    return parse


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *, prefix: str = "",
              skip: tuple[str, ...] = (), nested: dict[str, str] | None = None, only_given: bool = False) -> None:
    """Add one option per field of dataclass ``cls``.

    ``nested`` maps a field holding another config dataclass to the prefix
    of its flags ("" for none); such fields get that dataclass's flags.
    ``only_given``: a flag the user did not give leaves no attribute in the
    namespace (its default is still shown), so settings that also read the
    environment can tell "not given" from "given the default".
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if nested is not None and f.name in nested:
            add_flags(parser, type(getattr(defaults, f.name)), prefix=nested[f.name], only_given=only_given)
            continue
        kind, optional = _base_type(hints[f.name])
        default = getattr(defaults, f.name)
        given = argparse.SUPPRESS if only_given else default
        help_text = docs.get(f.name, "")
        if kind is bool:
            parser.add_argument(_flag(prefix, f.name), dest=prefix + f.name, default=given,
                                action=argparse.BooleanOptionalAction, help=help_text)
            continue
        if kind not in (int, float, str):
            continue  # not a command-line type: set it in code
        shown = "" if default is None or "(default" in help_text else f" (default: {default})"
        parser.add_argument(_flag(prefix, f.name), dest=prefix + f.name, default=given,
                            type=_parser_for(kind, optional, prefix + f.name), metavar=kind.__name__.upper(),
                            help=(help_text + shown).replace("%", "%%"))


def from_flags(cls: type, args: argparse.Namespace, *, prefix: str = "", nested: dict[str, str] | None = None,
               **fixed: Any) -> Any:
    """Build ``cls`` from the namespace :func:`add_flags` filled; ``fixed`` fields are given directly.

    :raises ValueError: the dataclass refused the values (its message names the problem).
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in fixed:
            values[f.name] = fixed[f.name]
        elif nested is not None and f.name in nested:
            values[f.name] = from_flags(type(getattr(cls(), f.name)), args, prefix=nested[f.name])
        elif hasattr(args, prefix + f.name):
            values[f.name] = getattr(args, prefix + f.name)
    return cls(**values)
