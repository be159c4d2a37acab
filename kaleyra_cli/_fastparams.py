"""Start-up speed for the CLI process: the two costs kwa does not need to pay (issue 7).

1. Typer (0.20 and later) checks every parameter value with a Pydantic ``TypeAdapter``, built
   on first use even for a value that is ``None``: importing Pydantic and building the adapters
   costs about 60 ms on each ``kwa reply``, for values that are plain strings, small integers,
   paths and one enum. :func:`install` makes each parameter use a :class:`FastCoercion`, which
   converts the ordinary values itself and hands anything else (a value out of range, an unknown
   choice, an odd type) to Typer's own coercion, so results and error messages stay Typer's.
   ``tests/test_startup.py`` checks that the two agree for every parameter of every command, so
   a Typer upgrade that changes the rules fails there.
2. ``import httpx`` also imports httpx's own command-line client when Click, Rich and Pygments
   are installed (Click comes with uvicorn): about 40 ms that kwa never uses.
   :func:`skip_httpx_cli` makes that optional import fail, which httpx handles (its ``main``
   becomes a stub). Only the ``kwa`` process does this, never library use.

This module touches Typer's private parameter API (``_TyperParameter.get_runtime_param``,
``type_descriptor``, ``_runtime_param``); where a Typer version does not have it, nothing is
changed. ``install`` applies to every Typer parameter in the process (the CLI's own, the help
and completion options Typer adds); importing :mod:`kaleyra_cli.cli` calls it, library use
(``import kaleyra_cli``) does not.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from enum import Enum
from pathlib import Path
from typing import Any

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class _Delegate(Exception):
    """The value is not an ordinary one: let Typer's own coercion decide (and word the error)."""


def skip_httpx_cli() -> None:
    """Make ``import httpx`` skip httpx's command-line client (``httpx._main``) in this process."""
    if "httpx" not in sys.modules:
        # A None entry makes the import raise ImportError, which httpx/__init__ catches.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class FastCoercion:
    """Coerce one parameter's value like Typer's runtime coercion, without Pydantic.

    Handles: ``str``; ``int``/``float`` (within ``min``/``max``, no clamping); ``Enum`` choices;
    ``pathlib.Path`` without ``resolve_path``. Everything else, and every value that would be an
    error, goes to Typer's coercion (built on first need).
    """

    def __init__(self, param: Any) -> None:
        self._param = param
        self._slow: Any = None
        descriptor = param.type_descriptor
        self._annotation = descriptor.annotation
        self._info = descriptor.parameter_info
        self._simple = (
            descriptor.file_annotation is None
            and getattr(self._info, "parser", None) is None
            and not getattr(param, "multiple", False)
            and getattr(param, "nargs", 1) == 1
        )

    def _typer(self) -> Any:
        if self._slow is None:
            from typer._coercion import build_runtime_param

            self._slow = build_runtime_param(self._param.type_descriptor)
        return self._slow

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as Typer's coercion answers None, without building anything
            return () if getattr(param, "multiple", False) or getattr(param, "nargs", 1) == -1 else None
        if not self._simple:
            return self._typer().coerce(value, param=param, ctx=ctx)
        try:
            return self._fast(value, ctx)
        except _Delegate:
            return self._typer().coerce(value, param=param, ctx=ctx)

    def _fast(self, value: Any, ctx: Any) -> Any:
        annotation = self._annotation
        if annotation is str:
            if type(value) is str:
                return value
        elif annotation is bool:
            if type(value) is bool:
                return value
        elif annotation is int:
            if type(value) is int:
                return self._in_range(value)
            if type(value) is str and _INT_RE.fullmatch(value):
                return self._in_range(int(value))
        elif annotation is float:
            if type(value) in (int, float):
                return self._in_range(float(value))
            if type(value) is str and _FLOAT_RE.fullmatch(value):
                return self._in_range(float(value))
        elif isinstance(annotation, type) and issubclass(annotation, Enum):
            return self._choice(value, ctx)
        elif isinstance(annotation, type) and issubclass(annotation, Path):
            return self._path(value)
        raise _Delegate

    def _in_range(self, number: int | float) -> int | float:
        low, high = self._info.min, self._info.max
        if getattr(self._info, "clamp", False) and (low is not None or high is not None):
            raise _Delegate
        if (low is not None and number < low) or (high is not None and number > high):
            raise _Delegate
        return number

    def _choice(self, value: Any, ctx: Any) -> Any:
        from typer._param_types import coerce_cli_choice

        try:
            return coerce_cli_choice(
                value,
                choices=tuple(self._annotation),
                case_sensitive=self._info.case_sensitive,
                ctx=ctx,
            )
        except ValueError:
            raise _Delegate from None

    def _path(self, value: Any) -> Path:
        info = self._info
        if type(value) is not str or not value or getattr(info, "path_type", None) is not None or info.resolve_path:
            raise _Delegate
        path = self._annotation(value)
        if info.file_okay and info.allow_dash and value == "-":
            return path
        try:
            st = os.stat(value)
        except OSError:
            if info.exists:
                raise _Delegate from None
            return path
        if (
            (not info.file_okay and stat.S_ISREG(st.st_mode))
            or (not info.dir_okay and stat.S_ISDIR(st.st_mode))
            or (info.readable and not os.access(value, os.R_OK))
            or (info.writable and not os.access(value, os.W_OK))
        ):
            raise _Delegate
        return path


def supported(param: Any) -> bool:
    """Whether ``param`` has the Typer runtime-coercion API that :class:`FastCoercion` stands in for."""
    return hasattr(param, "type_descriptor") and hasattr(param, "get_runtime_param") and hasattr(param, "_runtime_param")


def install() -> bool:
    """Make Typer parameters coerce through :class:`FastCoercion` (idempotent).

    Returns whether this Typer has the API it replaces; when not, nothing is changed.
    """
    try:
        from typer.core import _TyperParameter
    except ImportError:  # a Typer before runtime coercion (it used Click's types, no Pydantic)
        return False
    original = getattr(_TyperParameter, "get_runtime_param", None)
    if original is None:
        return False
    if getattr(original, "_kwa_fast", False):
        return True

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            self._runtime_param = FastCoercion(self)
        return self._runtime_param

    get_runtime_param._kwa_fast = True  # type: ignore[attr-defined]
    get_runtime_param.__wrapped__ = original  # type: ignore[attr-defined]
    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
    return True
