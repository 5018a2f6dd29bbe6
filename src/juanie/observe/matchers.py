"""Label matchers shared by queries, routes, silences and inhibition rules.

One implementation of ``=``, ``!=``, ``=~`` and ``!~`` so a matcher means the same thing in a PromQL selector, an
Alertmanager route and a silence: regular expressions are fully anchored and a missing label reads as ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

OPS = ("=~", "!~", "!=", "=")
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class MatcherError(ValueError):
    """A matcher that cannot be parsed or whose regular expression does not compile."""


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(f"(?:{pattern})\\Z", re.DOTALL)
    except re.error as exc:
        raise MatcherError(f"invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Matcher:
    """``name op value``; ``matches`` is total: a missing label is the empty string."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise MatcherError(f"unknown matcher operator {self.op!r}; expected one of = != =~ !~")
        if not _NAME.fullmatch(self.name):
            raise MatcherError(f"invalid label name {self.name!r}; expected [a-zA-Z_][a-zA-Z0-9_]*")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", _compile(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.match(actual) is not None
        return hit if self.op == "=~" else not hit

    def matches_empty(self) -> bool:
        """True when a series without this label would match (used to reject catch-all silences)."""
        return self.matches({})

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def format_matchers(matchers: Iterable[Matcher]) -> str:
    return "{" + ",".join(str(m) for m in matchers) + "}"


def parse_matcher(text: str) -> Matcher:
    """Parse one Alertmanager matcher: ``severity="P0"``, ``team=~"a|b"`` or unquoted ``env!=prod``."""
    stripped = text.strip()
    m = re.match(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)\Z", stripped, re.DOTALL)
    if not m:
        raise MatcherError(f'invalid matcher {text!r}; expected name="value" with one of = != =~ !~')
    name, op, raw = m.group(1), m.group(2), m.group(3).strip()
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise MatcherError(f"invalid matcher {text!r}: unterminated quoted value")
        raw = _unquote(raw[1:-1], text)
    elif any(c in raw for c in '",{}'):
        raise MatcherError(f"invalid matcher {text!r}: values with quotes, commas or braces must be quoted")
    return Matcher(name, op, raw)


def _split_outside_quotes(text: str, is_separator: Callable[[str], bool]) -> tuple[list[str], bool]:
    """Cut ``text`` at every separator that is not inside double quotes (a backslash escapes a quote inside them).

    Returns every piece, empty ones included, and whether a quote was left open; ``split_words`` and
    ``parse_matchers`` differ only in the separator and in what they make of empty pieces and an open quote.
    """
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and is_separator(ch):
            pieces.append("".join(current))
            current = []
            continue
        current.append(ch)
    pieces.append("".join(current))
    return pieces, quoted


def split_words(text: str) -> list[str]:
    """Split on whitespace outside double quotes: `a="x y" b="2"` -> [`a="x y"`, `b="2"`] (amtool's arguments)."""
    words, _ = _split_outside_quotes(text, str.isspace)
    return [word for word in words if word]


def parse_matchers(text: str) -> list[Matcher]:
    """Parse ``{a="1", b=~"x|y"}`` (braces optional) into matchers; commas inside quotes are respected."""
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise MatcherError(f"invalid matchers {text!r}: missing closing '}}'")
        body = body[1:-1]
    parts, unterminated = _split_outside_quotes(body, lambda ch: ch == ",")
    if unterminated:
        raise MatcherError(f"invalid matchers {text!r}: unterminated quoted value")
    return [parse_matcher(p) for p in parts if p.strip()]


def _unquote(raw: str, original: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            if i + 1 >= len(raw):
                raise MatcherError(f"invalid matcher {original!r}: dangling backslash")
            nxt = raw[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        if ch == '"':
            raise MatcherError(f"invalid matcher {original!r}: unescaped quote inside value")
        out.append(ch)
        i += 1
    return "".join(out)
