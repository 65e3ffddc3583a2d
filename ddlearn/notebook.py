"""Helpers for the chapters: show library code instead of copying it.

``show_source(ddlearn.forward.q_sample)`` as the last line of a cell displays
the function's source, syntax-highlighted, with the file and line numbers it
came from. The library stays the only copy of the code; the chapter shows it
where it teaches. Outside Jupyter the same object prints as plain text.

Exercise checkers live in :mod:`ddlearn.exercises`; ``check`` is re-exported
here for convenience.
"""
from __future__ import annotations

import ast
import html
import inspect
import os
import textwrap

from .exercises import check  # noqa: F401  (re-export: chapters import both from here)


class Source:
    """A piece of library source: ``_repr_html_`` highlights it, ``str()`` is plain text."""

    def __init__(self, code: str, where: str, first_line: int | None):
        # first_line=None: no line numbers (they would not match the file, e.g. docstring removed)
        self.code, self.where, self.first_line = code, where, first_line

    def __str__(self) -> str:
        return f"# {self.where}\n{self.code}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        # Inline styles (noclasses): the HTML carries its own colours, so it looks
        # the same in Jupyter, in the nbconvert book and on a code host.
        fmt = HtmlFormatter(noclasses=True, style="default", nobackground=False,
                            linenos="inline" if self.first_line else False,
                            linenostart=self.first_line or 1)
        body = highlight(self.code, PythonLexer(), fmt)
        head = (f'<div style="font-family:monospace;font-size:85%;color:#555;margin-bottom:2px">'
                f'{html.escape(self.where)}</div>')
        return f'<div style="border-left:3px solid #9ab;padding-left:6px">{head}{body}</div>'


def _unwrap(obj):
    """The function behind a property, classmethod, staticmethod or functools.wraps wrapper."""
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    return inspect.unwrap(obj)


def _strip_docstring(code: str) -> str:
    """Remove the docstring of the (first) function or class defined in ``code``."""
    tree = ast.parse(code)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not node.body:
        return code
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return code
    lines = code.splitlines(keepends=True)
    del lines[first.lineno - 1:first.end_lineno]
    if len(node.body) == 1:  # nothing but a docstring: keep the body valid
        indent = " " * (first.col_offset)
        lines.insert(first.lineno - 1, f"{indent}...\n")
    return "".join(lines)


def show_source(obj, *, docstring: bool = True) -> Source:
    """Display the source of a library function, method, property or class.

    ``docstring=False`` hides the docstring when the chapter has just shown the
    maths in its own words. Returns a :class:`Source` that Jupyter renders
    highlighted (put it last in a cell, or pass it to ``display``).
    """
    target = _unwrap(obj)
    if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.ismethod(target)):
        raise TypeError(f"obj must be a function, method, property or class, got {type(obj).__name__}")
    try:
        lines, first = inspect.getsourcelines(target)
        path = inspect.getsourcefile(target) or "<unknown>"
    except (OSError, TypeError) as err:
        raise ValueError(f"no source available for {obj!r} (defined interactively or in C?)") from err
    code = textwrap.dedent("".join(lines))
    if not docstring:
        code = _strip_docstring(code)
    # Show paths relative to the package's parent (ddlearn/forward.py), not the reader's disk.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rel = os.path.relpath(path, root) if os.path.abspath(path).startswith(root) else os.path.basename(path)
    name = getattr(target, "__qualname__", getattr(target, "__name__", "?"))
    where = f"{rel.replace(os.sep, '/')}:{first}-{first + len(lines) - 1}  ({name})"
    return Source(code, where, first if docstring else None)
