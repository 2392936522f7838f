"""HTTP route templates as the Functions host (ASP.NET Core routing) accepts them.

Supported: literal segments (case-insensitive), `{name}`, `{name?}`, `{name=default}`, constraints
`{name:int}` / `{name:guid}` / `{name:alpha}` / ... (chainable: `{id:int:min(1)}`), catch-all `{*rest}` (or
`{**rest}`), and complex segments mixing literals and parameters such as `{id}:approve` or `{name}.{ext?}`.
Route values are matched against URL-decoded segments. When several templates match, the most specific wins
(literal > complex > constrained parameter > parameter > catch-all, segment by segment), as in ASP.NET.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


class RouteError(ValueError):
    """A route template the host would refuse."""


@dataclass(frozen=True)
class Parameter:
    name: str
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    constraints: tuple[tuple[str, str | None], ...] = ()

    def accepts(self, value: str) -> bool:
        return all(_CONSTRAINTS[name](value, arg) for name, arg in self.constraints)


Part = str | Parameter


def _int_in(value: str, low: int, high: int) -> bool:
    if not re.fullmatch(r"[+-]?\d+", value):
        return False
    return low <= int(value) <= high


def _is_float(value: str) -> bool:
    return re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", value) is not None


def _is_guid(value: str) -> bool:
    text = value
    if len(text) >= 2 and (text[0], text[-1]) in (("{", "}"), ("(", ")")):
        text = text[1:-1]
    if not re.fullmatch(
        r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", text
    ):
        return False
    if "-" in text and text.count("-") != 4:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _args(arg: str | None, count: int, name: str) -> list[int]:
    if arg is None:
        raise RouteError(f"constraint {name} needs {count} argument(s)")
    parts = [p.strip() for p in arg.split(",")]
    if len(parts) != count or not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise RouteError(f"constraint {name}({arg}) needs {count} integer argument(s)")
    return [int(p) for p in parts]


def _length(value: str, arg: str | None) -> bool:
    if arg is not None and "," in arg:
        low, high = _args(arg, 2, "length")
        return low <= len(value) <= high
    return len(value) == _args(arg, 1, "length")[0]


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_CONSTRAINTS: dict[str, Callable[[str, str | None], bool]] = {
    "int": lambda v, _a: _int_in(v, *_INT32),
    "long": lambda v, _a: _int_in(v, *_INT64),
    "bool": lambda v, _a: v.lower() in ("true", "false"),
    "guid": lambda v, _a: _is_guid(v),
    "alpha": lambda v, _a: bool(re.fullmatch(r"[A-Za-z]+", v)),
    "decimal": lambda v, _a: _is_float(v),
    "double": lambda v, _a: _is_float(v),
    "float": lambda v, _a: _is_float(v),
    "datetime": lambda v, _a: _is_datetime(v),
    "required": lambda v, _a: v != "",
    "minlength": lambda v, a: len(v) >= _args(a, 1, "minlength")[0],
    "maxlength": lambda v, a: len(v) <= _args(a, 1, "maxlength")[0],
    "length": _length,
    "min": lambda v, a: _int_in(v, *_INT64) and int(v) >= _args(a, 1, "min")[0],
    "max": lambda v, a: _int_in(v, *_INT64) and int(v) <= _args(a, 1, "max")[0],
    "range": lambda v, a: (
        _int_in(v, *_INT64) and _args(a, 2, "range")[0] <= int(v) <= _args(a, 2, "range")[1]
    ),
    "regex": lambda v, a: re.search(a or "", v, re.IGNORECASE) is not None,
}
_NEEDS_ARGS = {"minlength", "maxlength", "length", "min", "max", "range", "regex"}


def _parse_parameter(inner: str, template: str) -> Parameter:
    text = inner
    catch_all = False
    if text.startswith("**"):
        catch_all, text = True, text[2:]
    elif text.startswith("*"):
        catch_all, text = True, text[1:]
    match = re.match(r"[^:=?{}*/]+", text)
    if not match:
        raise RouteError(f"route {template!r}: parameter {{{inner}}} has no name")
    name = match.group(0).strip()
    pos = match.end()
    constraints: list[tuple[str, str | None]] = []
    optional = False
    default: str | None = None
    while pos < len(text):
        char = text[pos]
        if char == ":":
            cmatch = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[pos + 1 :])
            if not cmatch:
                raise RouteError(f"route {template!r}: bad constraint in {{{inner}}}")
            cname = cmatch.group(0).lower()
            pos += 1 + cmatch.end()
            arg: str | None = None
            if pos < len(text) and text[pos] == "(":
                depth, start = 0, pos
                while pos < len(text):
                    if text[pos] == "(":
                        depth += 1
                    elif text[pos] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    pos += 1
                if pos >= len(text):
                    raise RouteError(f"route {template!r}: unbalanced parentheses in {{{inner}}}")
                arg = text[start + 1 : pos]
                pos += 1
            if cname not in _CONSTRAINTS:
                raise RouteError(f"route {template!r}: unknown constraint {cname!r} in {{{inner}}}")
            if cname in _NEEDS_ARGS:
                if arg is None:
                    raise RouteError(f"route {template!r}: constraint {cname} needs arguments in {{{inner}}}")
                if cname != "regex":
                    _CONSTRAINTS[cname]("0", arg)  # validates the arguments now, not at request time
            constraints.append((cname, arg))
        elif char == "?" and pos == len(text) - 1:
            optional = True
            pos += 1
        elif char == "=":
            default = text[pos + 1 :]
            pos = len(text)
        else:
            raise RouteError(f"route {template!r}: cannot parse parameter {{{inner}}}")
    if catch_all and optional:
        raise RouteError(f"route {template!r}: a catch-all parameter cannot be optional")
    return Parameter(name, optional, default, catch_all, tuple(constraints))


def _split_segments(template: str) -> list[str]:
    segments: list[str] = []
    current: list[str] = []
    depth = 0
    for char in template:
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        if char == "/" and depth == 0:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return segments


def _parse_segment(segment: str, template: str) -> list[Part]:
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal.append(char)
            i += 2
            continue
        if char == "{":
            end, depth = i, 0
            while end < len(segment):
                if segment[end] == "{":
                    depth += 1
                elif segment[end] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            if end >= len(segment):
                raise RouteError(f"route {template!r}: unclosed '{{' in segment {segment!r}")
            if literal:
                parts.append("".join(literal))
                literal = []
            if parts and isinstance(parts[-1], Parameter):
                raise RouteError(f"route {template!r}: two parameters must be separated by a literal")
            parts.append(_parse_parameter(segment[i + 1 : end], template))
            i = end + 1
            continue
        if char == "}":
            raise RouteError(f"route {template!r}: unmatched '}}' in segment {segment!r}")
        literal.append(char)
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


@dataclass
class RouteTemplate:
    template: str
    segments: list[list[Part]] = field(default_factory=list)
    _complex: dict[int, re.Pattern[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        text = self.template.strip()
        if text.startswith("~/"):
            text = text[2:]
        text = text.strip("/")
        names: set[str] = set()
        raw_segments = _split_segments(text) if text else []
        for index, raw in enumerate(raw_segments):
            if raw == "":
                raise RouteError(f"route {self.template!r}: empty segment")
            parts = _parse_segment(raw, self.template)
            for part in parts:
                if isinstance(part, Parameter):
                    if part.name.lower() in names:
                        raise RouteError(f"route {self.template!r}: parameter {part.name!r} appears twice")
                    names.add(part.name.lower())
                    if part.catch_all and (index != len(raw_segments) - 1 or len(parts) != 1):
                        raise RouteError(
                            f"route {self.template!r}: a catch-all must be the whole last segment"
                        )
                    if part.optional and len(parts) == 1 and index != len(raw_segments) - 1:
                        raise RouteError(f"route {self.template!r}: only the last segment can be optional")
            if len(parts) > 1:
                self._complex[index] = self._complex_pattern(parts)
            self.segments.append(parts)

    def _complex_pattern(self, parts: list[Part]) -> re.Pattern[str]:
        last = parts[-1]
        tail_optional = (
            len(parts) >= 2
            and isinstance(last, Parameter)
            and isinstance(parts[-2], str)
            and (last.optional or last.default is not None)
        )
        pattern = []
        for i, part in enumerate(parts):
            if isinstance(part, str):
                if tail_optional and i == len(parts) - 2:
                    literal = re.escape(part)
                    pattern.append(f"(?:{literal}(?P<p{i + 1}>(?:(?!{literal}).)+))?")
                    break
                pattern.append(re.escape(part))
            else:
                if part.optional and i != len(parts) - 1:
                    raise RouteError(f"route {self.template!r}: only a trailing parameter can be optional")
                lazy = tail_optional and i == len(parts) - 3
                pattern.append(f"(?P<p{i}>.+?)" if lazy else f"(?P<p{i}>.+)")
        return re.compile("".join(pattern), re.IGNORECASE | re.DOTALL)

    @property
    def parameters(self) -> list[Parameter]:
        return [p for parts in self.segments for p in parts if isinstance(p, Parameter)]

    def precedence(self) -> tuple[int, ...]:
        """Lower sorts first: literal 1, complex 2, constrained parameter 3, parameter 4, catch-all 5."""
        digits = []
        for parts in self.segments:
            if len(parts) > 1:
                digits.append(2)
            elif isinstance(parts[0], str):
                digits.append(1)
            elif parts[0].catch_all:
                digits.append(5)
            else:
                digits.append(3 if parts[0].constraints else 4)
        return tuple(digits)

    def match(self, path_segments: list[str]) -> dict[str, str] | None:
        """Route values for URL-decoded path segments, or None when the template does not match."""
        values: dict[str, str] = {}
        for index, parts in enumerate(self.segments):
            first = parts[0]
            if len(parts) == 1 and isinstance(first, Parameter) and first.catch_all:
                rest = "/".join(path_segments[index:])
                if rest == "":
                    if first.default is not None:
                        values[first.name] = first.default
                    return values
                if not first.accepts(rest):
                    return None
                values[first.name] = rest
                return values
            if index >= len(path_segments):
                if (
                    len(parts) == 1
                    and isinstance(first, Parameter)
                    and (first.optional or first.default is not None)
                ):
                    if first.default is not None:
                        values[first.name] = first.default
                    continue
                return None
            segment = path_segments[index]
            if segment == "":
                return None
            if len(parts) == 1:
                if isinstance(first, str):
                    if segment.lower() != first.lower():
                        return None
                elif not first.accepts(segment):
                    return None
                else:
                    values[first.name] = segment
                continue
            found = self._complex[index].fullmatch(segment)
            if not found:
                return None
            for i, part in enumerate(parts):
                if not isinstance(part, Parameter):
                    continue
                value = found.groupdict().get(f"p{i}")
                if value is None:
                    if part.default is not None:
                        values[part.name] = part.default
                    continue
                if not part.accepts(value):
                    return None
                values[part.name] = value
        if len(path_segments) > len(self.segments):
            return None
        return values
