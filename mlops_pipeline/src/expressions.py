"""Derived-feature expressions: a small, safe arithmetic language over column names.

An expression such as ``Amount / Time / Income`` is parsed once with the standard `ast` module and
evaluated with numpy on whole columns. Allowed: numbers, column names (in backticks when they are
not Python names: ```Monthly income` / 12``), ``+ - * / ** // %``, unary ``-`` and ``+``,
parentheses, and the math functions of `pandas.eval` (`FUNCTIONS`). Anything else (comparisons,
boolean operators, attributes, strings, ``@`` variables) is rejected when parsing.

Both `settings` (to reject a bad expression when the config loads) and `ft_engineering` (to
evaluate it inside the fitted pipeline) use this module; it imports neither.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

FUNCTIONS = {
    name: getattr(np, name)
    for name in (
        "sin", "cos", "exp", "log", "expm1", "log1p", "sqrt", "sinh", "cosh", "tanh", "arcsin", "arccos",
        "arctan", "arccosh", "arcsinh", "arctanh", "abs", "log10", "floor", "ceil", "arctan2",
    )
}  # fmt: skip
"""The math functions `pandas.eval` offers, by name; all take one argument but ``arctan2``."""

BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
}
UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
ALLOWED = "números, nombres de columna, + - * / ** // %, paréntesis y las funciones " + ", ".join(FUNCTIONS)

_BACKTICKED = re.compile(r"`([^`]*)`")


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its syntax tree and the column names it reads."""

    text: str
    tree: ast.expr
    columns: frozenset[str]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray | float:
        """The expression over ``columns`` (name -> array); a number when it reads no column.

        Runs under the caller's `numpy.errstate`: division by zero gives ``inf`` or ``nan``.
        """
        return _evaluate(self.tree, columns)


def parse(text: str) -> Expression:
    """Parse and check an expression.

    Raises:
        ValueError: for a syntax error or a construct outside the language, saying which.
    """
    quoted: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        quoted[f"_quoted_column_{len(quoted)}"] = match.group(1)
        return f" _quoted_column_{len(quoted) - 1} "

    source = " ".join(_BACKTICKED.sub(placeholder, text).split())  # YAML may fold lines
    if not source:
        raise ValueError("la expresión está vacía")
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        raise ValueError("error de sintaxis: revise los operadores y los paréntesis") from None
    columns: set[str] = set()
    _check(tree, quoted, columns)
    return Expression(text, tree, frozenset(columns))


def _check(node: ast.expr, quoted: dict[str, str], columns: set[str]) -> None:
    """Reject what the language lacks; collect column names (backticked ones restored in place)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return
    if isinstance(node, ast.Name):
        node.id = quoted.get(node.id, node.id)
        columns.add(node.id)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        _check(node.left, quoted, columns)
        _check(node.right, quoted, columns)
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        _check(node.operand, quoted, columns)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        arity = 2 if node.func.id == "arctan2" else 1
        if node.keywords or len(node.args) != arity:
            raise ValueError(f"{node.func.id}() recibe {arity} argumento(s), sin nombres")
        for argument in node.args:
            _check(argument, quoted, columns)
        return
    raise ValueError(f"'{ast.unparse(node)}' no está permitido; use solo {ALLOWED}")


def _evaluate(node: ast.expr, columns: Mapping[str, np.ndarray]) -> np.ndarray | float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.BinOp):
        return BINARY[type(node.op)](_evaluate(node.left, columns), _evaluate(node.right, columns))
    if isinstance(node, ast.UnaryOp):
        return UNARY[type(node.op)](_evaluate(node.operand, columns))
    return FUNCTIONS[node.func.id](*(_evaluate(argument, columns) for argument in node.args))
