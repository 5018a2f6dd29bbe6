"""A tokeniser and recursive-descent parser for the subset of PromQL that Juanie evaluates itself.

The subset is chosen so that every expression Juanie accepts means the same thing to a real Prometheus: rules and
dashboards written once work on the embedded store and, unchanged, against ``PrometheusBackend``.
Errors name the position and what was expected, e.g. ``position 14: expected ']' after range duration, got ')'``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from juanie.observe.durations import parse_duration
from juanie.observe.matchers import Matcher, MatcherError
from juanie.observe.metrics.promql_ast import (
    AGGREGATIONS,
    ARITHMETIC,
    COMPARISON,
    FUNCTIONS,
    MATRIX,
    SCALAR,
    VECTOR,
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    Node,
    NumberLiteral,
    Unary,
    VectorSelector,
)


class PromQLError(ValueError):
    """An expression outside the supported subset or with a syntax error; ``position`` is a 0-based offset."""

    def __init__(self, message: str, expr: str = "", position: int | None = None) -> None:
        self.expr = expr
        self.position = position
        where = f"position {position}: " if position is not None else ""
        super().__init__(f"invalid query {expr!r}: {where}{message}" if expr else message)


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, duration, string, op, eof
    text: str
    pos: int


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![A-Za-z0-9_:])
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<op>=~|!~|!=|==|>=|<=|[=><+\-*/%^(){}\[\],])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_PRECEDENCE = [COMPARISON, ("+", "-"), ("*", "/", "%")]


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise PromQLError(f"unexpected character {expr[pos]!r}", expr, pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(expr)))
    return tokens


@lru_cache(maxsize=2048)
def parse(expr: str) -> Node:
    """Parse ``expr`` into a syntax tree; cached because rules re-evaluate the same strings every interval."""
    if not isinstance(expr, str) or not expr.strip():
        raise PromQLError("expected a PromQL expression, got an empty string")
    parser = _Parser(expr, tokenize(expr))
    node = parser.expression()
    parser.expect_kind("eof", "end of expression")
    if node.type == MATRIX:
        raise PromQLError("a range vector cannot be the result; wrap it in rate(), increase() or *_over_time()", expr)
    return node


class _Parser:
    def __init__(self, expr: str, tokens: list[Token]) -> None:
        self.expr = expr
        self.tokens = tokens
        self.i = 0

    # -- token helpers -------------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, message: str, tok: Token | None = None) -> PromQLError:
        tok = tok or self.tok
        found = "end of expression" if tok.kind == "eof" else repr(tok.text)
        return PromQLError(f"{message}, got {found}", self.expr, tok.pos)

    def expect_op(self, text: str, context: str) -> Token:
        if self.tok.kind != "op" or self.tok.text != text:
            raise self.error(f"expected {text!r} {context}")
        return self.advance()

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(f"expected {what}")
        return self.advance()

    def at_op(self, *texts: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in texts

    def at_ident(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text in words

    # -- grammar -------------------------------------------------------------------------------------------
    def expression(self, level: int = 0) -> Node:
        if level == len(_PRECEDENCE):
            return self.power()
        lhs = self.expression(level + 1)
        while self.at_op(*_PRECEDENCE[level]):
            op_tok = self.advance()
            return_bool = False
            if self.at_ident("bool"):
                if op_tok.text not in COMPARISON:
                    raise self.error("'bool' is only allowed after a comparison operator")
                self.advance()
                return_bool = True
            on, ignoring = self.vector_matching()
            rhs = self.expression(level + 1)
            lhs = self.binary(op_tok, lhs, rhs, return_bool, on, ignoring)
        if self.at_ident("and", "or", "unless"):
            raise self.error(
                "set operators (and, or, unless) are not supported; supported operators: "
                + " ".join(ARITHMETIC + COMPARISON)
            )
        return lhs

    def power(self) -> Node:
        lhs = self.unary()
        if self.at_op("^"):
            op_tok = self.advance()
            on, ignoring = self.vector_matching()
            rhs = self.power()  # right-associative
            return self.binary(op_tok, lhs, rhs, False, on, ignoring)
        return lhs

    def vector_matching(self) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        if self.at_ident("on"):
            self.advance()
            return self.label_list("on"), ()
        if self.at_ident("ignoring"):
            self.advance()
            return None, self.label_list("ignoring")
        if self.at_ident("group_left", "group_right"):
            raise self.error("many-to-one matching (group_left/group_right) is not supported")
        return None, ()

    def binary(
        self,
        op_tok: Token,
        lhs: Node,
        rhs: Node,
        return_bool: bool,
        on: tuple[str, ...] | None,
        ignoring: tuple[str, ...],
    ) -> Node:
        if MATRIX in (lhs.type, rhs.type):
            raise PromQLError(
                f"operator {op_tok.text!r} needs instant vectors or scalars, not a range vector",
                self.expr,
                op_tok.pos,
            )
        both_scalar = lhs.type == SCALAR and rhs.type == SCALAR
        if op_tok.text in COMPARISON and both_scalar and not return_bool:
            raise PromQLError("comparisons between scalars must use 'bool'", self.expr, op_tok.pos)
        if (on is not None or ignoring) and not (lhs.type == VECTOR and rhs.type == VECTOR):
            raise PromQLError("on()/ignoring() need vectors on both sides", self.expr, op_tok.pos)
        result_type = SCALAR if both_scalar else VECTOR
        return Binary(op_tok.text, lhs, rhs, return_bool, on, ignoring, type=result_type)

    def unary(self) -> Node:
        if self.at_op("-", "+"):
            op = self.advance().text
            inner = self.unary()
            if inner.type == MATRIX:
                raise self.error("unary minus needs a scalar or instant vector")
            if op == "+":
                return inner
            if isinstance(inner, NumberLiteral):
                return NumberLiteral(-inner.value)
            return Unary("-", inner, type=inner.type)
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return NumberLiteral(float(int(tok.text, 16)) if tok.text.lower().startswith("0x") else float(tok.text))
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            inner = self.expression()
            self.expect_op(")", "to close '('")
            return self.range_suffix(inner)
        if tok.kind == "op" and tok.text == "{":
            return self.range_suffix(self.selector(None))
        if tok.kind == "ident":
            word = tok.text
            if word.lower() in ("inf", "nan") and self.peek().text not in ("(", "{"):
                self.advance()
                return NumberLiteral(math.inf if word.lower() == "inf" else math.nan)
            if word in AGGREGATIONS and (self.peek().text == "(" or self.peek().text in ("by", "without")):
                return self.aggregation()
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call()
            self.advance()
            return self.range_suffix(self.selector(word))
        if tok.kind == "duration":
            raise self.error("a duration is only allowed inside [...] after a selector")
        if tok.kind == "string":
            raise self.error("string literals are not supported here; expected a number, selector or function")
        raise self.error("expected a number, a metric selector, a function or '('")

    def range_suffix(self, node: Node) -> Node:
        if not self.at_op("["):
            return node
        if not isinstance(node, VectorSelector):
            raise self.error(
                "a range [..] is only allowed directly after a metric selector (subqueries are not supported)"
            )
        self.advance()
        dur_tok = self.expect_kind("duration", "a duration such as 5m inside [...]")
        self.expect_op("]", "after range duration")
        seconds = parse_duration(dur_tok.text)
        if seconds <= 0:
            raise PromQLError("range duration must be positive", self.expr, dur_tok.pos)
        return MatrixSelector(node, seconds)

    def selector(self, name: str | None) -> VectorSelector:
        matchers: list[Matcher] = []
        if self.at_op("{"):
            self.advance()
            while not self.at_op("}"):
                label = self.expect_kind("ident", "a label name inside {...}")
                if not self.at_op("=", "!=", "=~", "!~"):
                    raise self.error(f"expected one of = != =~ !~ after label {label.text!r}")
                op = self.advance().text
                value_tok = self.expect_kind("string", f"a quoted value after {label.text}{op}")
                try:
                    matchers.append(Matcher(label.text, op, _unquote(value_tok.text)))
                except MatcherError as exc:
                    raise PromQLError(str(exc), self.expr, value_tok.pos) from None
                if not self.at_op(","):
                    break
                self.advance()
            self.expect_op("}", "to close the label matchers")
        if name is None:
            names = [m for m in matchers if m.name == "__name__" and m.op == "="]
            if names:
                name = names[0].value
                matchers = [m for m in matchers if m is not names[0]]
            elif all(m.matches_empty() for m in matchers):
                raise self.error("a selector needs a metric name or at least one matcher that excludes empty values")
        return VectorSelector(name, tuple(matchers))

    def label_list(self, context: str) -> tuple[str, ...]:
        self.expect_op("(", f"after {context!r}")
        labels: list[str] = []
        while not self.at_op(")"):
            labels.append(self.expect_kind("ident", f"a label name in {context}(...)").text)
            if not self.at_op(","):
                break
            self.advance()
        self.expect_op(")", f"to close {context}(...)")
        return tuple(labels)

    def aggregation(self) -> Node:
        op = self.advance().text
        grouping: tuple[str, ...] = ()
        without = False
        if self.at_ident("by", "without"):
            without = self.advance().text == "without"
            grouping = self.label_list("without" if without else "by")
        self.expect_op("(", f"after {op}")
        inner = self.expression()
        if self.at_op(","):
            raise self.error(f"{op}() takes one argument")
        self.expect_op(")", f"to close {op}(")
        if self.at_ident("by", "without"):
            if grouping or without:
                raise self.error("grouping given twice")
            without = self.advance().text == "without"
            grouping = self.label_list("without" if without else "by")
        if inner.type != VECTOR:
            raise PromQLError(f"{op}() needs an instant vector, got a {inner.type}", self.expr)
        return Aggregate(op, inner, grouping, without)

    def call(self) -> Node:
        name_tok = self.advance()
        name = name_tok.text
        if name not in FUNCTIONS:
            raise PromQLError(
                f"unknown or unsupported function {name!r}; supported: {', '.join(sorted(FUNCTIONS))}",
                self.expr,
                name_tok.pos,
            )
        arg_types, result = FUNCTIONS[name]
        self.expect_op("(", f"after {name}")
        args: list[Node] = []
        while not self.at_op(")"):
            args.append(self.expression())
            if not self.at_op(","):
                break
            self.advance()
        self.expect_op(")", f"to close {name}(")
        if len(args) != len(arg_types):
            raise PromQLError(f"{name}() takes {len(arg_types)} argument(s), got {len(args)}", self.expr, name_tok.pos)
        for index, (arg, expected) in enumerate(zip(args, arg_types, strict=True)):
            if arg.type != expected:
                hint = " (add a range such as [5m])" if expected == MATRIX else ""
                raise PromQLError(
                    f"{name}() argument {index + 1} must be a {expected}{hint}, got a {arg.type}",
                    self.expr,
                    name_tok.pos,
                )
        return Call(name, tuple(args), type=result)


def _unquote(text: str) -> str:
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)
