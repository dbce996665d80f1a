"""The keyword rule language: tokenizer, parser and syntax tree.

Grammar (the one place it is written down; EBNF, whitespace separates tokens and is otherwise ignored)::

    rule      = or_expr ;
    or_expr   = and_expr , { "OR" , and_expr } ;            (* also "|" *)
    and_expr  = not_expr , { "AND" , not_expr } ;          (* also "&" *)
    not_expr  = "NOT" , not_expr | near_expr ;             (* also "!" *)
    near_expr = operand , [ "NEAR/" , digits , operand ] ;
    operand   = [ field , ":" ] , ( term | "(" , or_expr , ")" ) ;
    field     = "title" | "content" ;
    term      = word | phrase ;
    phrase    = '"' , { any character but '"' } , '"'      (* or “…” *)
    word      = { any character but whitespace, ( ) " “ ” & | ! } ;

Meaning:

- A term holds when its text occurs as a substring. An unscoped term looks at the title and the content;
  ``title:`` / ``content:`` limit a term or a whole parenthesised group to one field. Scopes do not nest.
- Precedence: NOT binds tightest, then AND, then OR; parentheses group.
- Two terms side by side with no operator are an error ("expected AND/OR between terms"), never an
  implicit AND: in Chinese a missing operator is far more often a typo than an intent.
- ``A NEAR/n B`` holds when A and B occur in the same field, in either order, with at most n characters
  strictly between them (overlapping occurrences count as zero apart; with the same term on both sides
  two different occurrences are needed). Each side must be a term or a phrase, optionally field-scoped;
  NEAR over a parenthesised group, a NOT or another NEAR is rejected at the offending position. Distances
  count characters of the original text.
- Operators are upper-case words (``AND OR NOT NEAR/n``) or ``& | !``; lower-case ``and`` is a term.
  Full-width forms of the operator characters (``（）＆｜！＂``) work like the ASCII ones.
- A word of the form ``name:`` with ASCII letters before the colon is a field scope; unknown names are
  an error, so quote a term such as ``"QQ:12345"``.
- Matching folds case and width (NFKC + casefold, see :mod:`service.folding`) on rule and text.

Errors are :class:`RuleSyntaxError` with a Chinese message, a 0-based character index into the
expression (``position``, the contract) and the 1-based ``column`` people count in.

Limits (so that a hostile or mistaken rule cannot exhaust the stack, the memory or the automaton):
at most ``MAX_EXPR_CHARS`` characters, ``MAX_TERMS`` terms and ``MAX_NESTING`` levels of parentheses
and NOTs per expression. The parser never recurses deeper than the nesting limit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from service.folding import fold_char, fold_term

Field = Literal["title", "content"]
FIELDS: tuple[Field, ...] = ("title", "content")


MAX_EXPR_CHARS = 4000
MAX_TERMS = 500
MAX_NESTING = 50


class RuleSyntaxError(ValueError):
    """A rule expression does not parse; ``position`` is a 0-based character index, ``column`` 1-based."""

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"{message}（位置 {position}，第 {self.column} 个字符）")

    @property
    def column(self) -> int:
        """The 1-based column shown to people (``position`` + 1)."""
        return self.position + 1


# --- syntax tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A substring to find; ``text`` is folded, ``raw`` is as written in the rule."""

    text: str
    raw: str
    fields: tuple[Field, ...] = FIELDS
    position: int = 0


@dataclass(frozen=True)
class Near:
    """Both terms in one field with at most ``distance`` characters between them."""

    left: Term
    right: Term
    distance: int


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Near | Not | And | Or


def iter_terms(node: Node, negated: bool = False) -> list[tuple[Term, bool]]:
    """Every term of ``node`` with whether it sits under an odd number of NOTs."""
    if isinstance(node, Term):
        return [(node, negated)]
    if isinstance(node, Near):
        return [(node.left, negated), (node.right, negated)]
    if isinstance(node, Not):
        return iter_terms(node.child, not negated)
    out: list[tuple[Term, bool]] = []
    for child in node.children:
        out.extend(iter_terms(child, negated))
    return out


def deciding_terms(node: Node, usable: Callable[[str], bool] = lambda text: True) -> tuple[bool, list[Term] | None]:
    """(the value of ``node`` on a text holding none of the terms, the terms); None for the terms when no
    such set exists among the terms ``usable`` accepts.

    Only a text holding one of the terms can have another value, so a trial on stored items searches for
    them (any of them) and evaluates only what the search finds: ``(False, terms)``: every match holds one
    (``化工厂 AND 排污``); ``(True, terms)``: every text without them matches as it is (``NOT 表扬``). Of the
    deciding children of an AND (false on such a text) or an OR (true) the smallest set is taken (fewest
    terms, then the longest shortest term: a longer term occurs in fewer items); when every child has the
    other value, any child's terms may change it. Terms for which ``usable`` says no (the search would miss
    some) are never chosen.
    """
    if isinstance(node, Term):
        return False, ([node] if usable(node.text) else None)
    if isinstance(node, Near):
        sides = [t for t in (node.left, node.right) if usable(t.text)]
        return False, ([max(sides, key=lambda t: len(t.text))] if sides else None)
    if isinstance(node, Not):
        value, terms = deciding_terms(node.child, usable)
        return not value, terms
    results = [deciding_terms(child, usable) for child in node.children]
    decisive = isinstance(node, Or)
    options = [terms for value, terms in results if value is decisive and terms is not None]
    if options:
        return decisive, min(options, key=lambda r: (len(r), -min(len(t.text) for t in r)))
    if any(value is decisive for value, _ in results):
        return decisive, None
    alternatives: list[Term] = []
    for _, terms in results:
        if terms is None:
            return not decisive, None
        alternatives.extend(terms)
    return not decisive, alternatives


# --- tokenizer ---------------------------------------------------------------------------------------

_PUNCT = {"(": "LPAREN", ")": "RPAREN", "&": "AND", "|": "OR", "!": "NOT"}
_WORD_OPS = {"AND": "AND", "OR": "OR", "NOT": "NOT"}
_NEAR = re.compile(r"NEAR/([0-9]+)")
_OPEN_CLOSE = {'"': '"', "“": "”"}
_OP_NAMES = {"AND": "AND", "OR": "OR", "NOT": "NOT", "NEAR": "NEAR"}


@dataclass(frozen=True)
class Token:
    kind: str  # LPAREN RPAREN AND OR NOT NEAR FIELD TERM EOF
    text: str  # the operator's spelling, the field name, or the term as written
    position: int
    distance: int = 0  # NEAR only
    end: int = 0  # FIELD only: where the scoped term or '(' must start


@lru_cache(maxsize=4096)
def _char_kind(char: str) -> str:
    """Classify by the folded character so full-width punctuation acts like ASCII."""
    folded = fold_char(char) if not char.isascii() else char
    if char.isspace():
        return "space"
    if folded in _PUNCT:
        return folded
    if folded == '"' or char in _OPEN_CLOSE:
        return "quote"
    if char == "”":
        return "stray-close"
    return "word"


def tokenize(expr: str) -> list[Token]:
    """Split ``expr`` into tokens; raise RuleSyntaxError at the first bad character."""
    tokens: list[Token] = []
    i = 0
    n = len(expr)
    while i < n:
        char = expr[i]
        kind = _char_kind(char)
        if kind == "space":
            i += 1
        elif kind in _PUNCT:
            tokens.append(Token(_PUNCT[kind], char, i))
            i += 1
        elif kind == "quote":
            close = _OPEN_CLOSE.get(char, '"')
            j = i + 1
            while j < n and not (expr[j] == close or (close == '"' and fold_char(expr[j]) == '"')):
                j += 1
            if j >= n:
                raise RuleSyntaxError("引号没有闭合", i)
            phrase = expr[i + 1 : j]
            if not phrase.strip():
                raise RuleSyntaxError("引号内为空", i)
            tokens.append(Token("TERM", phrase, i))
            i = j + 1
        elif kind == "stray-close":
            raise RuleSyntaxError("右引号 ” 前面没有左引号 “", i)
        else:
            j = i
            while j < n and _char_kind(expr[j]) == "word":
                j += 1
            tokens.extend(_word_tokens(expr[i:j], i))
            i = j
    tokens.append(Token("EOF", "", n))
    return tokens


def _word_tokens(word: str, position: int) -> list[Token]:
    norm = unicodedata.normalize("NFKC", word)
    if norm in _WORD_OPS:
        return [Token(_WORD_OPS[norm], word, position)]
    if norm.startswith("NEAR"):
        m = _NEAR.fullmatch(norm)
        if m is not None:
            return [Token("NEAR", word, position, distance=int(m.group(1)))]
        if norm == "NEAR" or norm.startswith("NEAR/"):
            raise RuleSyntaxError("NEAR 需要写明距离，例如 NEAR/5", position)
    colon = next((k for k, char in enumerate(word) if char == ":" or char == "："), -1)
    if colon > 0:
        name = unicodedata.normalize("NFKC", word[:colon])
        if name.isascii() and name.isalpha():
            if name.lower() not in FIELDS:
                raise RuleSyntaxError(
                    f"未知字段 {name!r}：只能用 title: 或 content:；若是词本身含冒号，请加引号", position
                )
            out = [Token("FIELD", name.lower(), position, end=position + colon + 1)]
            if colon + 1 < len(word):
                out.extend(_word_tokens(word[colon + 1 :], position + colon + 1))
            return out
    return [Token("TERM", word, position)]


# --- parser ------------------------------------------------------------------------------------------


def _describe(token: Token) -> str:
    if token.kind == "EOF":
        return "表达式结尾"
    if token.kind == "TERM":
        return f"词 {token.text!r}"
    return repr(token.text)


class _Parser:
    def __init__(self, expr: str) -> None:
        if len(expr) > MAX_EXPR_CHARS:
            raise RuleSyntaxError(f"表达式过长：共 {len(expr)} 个字符，最多 {MAX_EXPR_CHARS} 个", MAX_EXPR_CHARS)
        self.tokens = tokenize(expr)
        terms = [t for t in self.tokens if t.kind == "TERM"]
        if len(terms) > MAX_TERMS:
            raise RuleSyntaxError(f"词过多：一条规则最多 {MAX_TERMS} 个词", terms[MAX_TERMS].position)
        self.i = 0
        self.depth = 0
        self.scope: tuple[Field, ...] | None = None

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise RuleSyntaxError("表达式为空", 0)
        node = self.or_expr()
        token = self.peek()
        if token.kind == "RPAREN":
            raise RuleSyntaxError("多余的右括号 ')'", token.position)
        if token.kind != "EOF":
            raise RuleSyntaxError(self._missing_operator(token), token.position)
        return node

    @staticmethod
    def _missing_operator(token: Token) -> str:
        hint = ""
        if token.kind == "TERM" and token.text.upper() in _OP_NAMES:
            hint = f"（运算符须大写：{token.text.upper()}）"
        return f"两个词之间缺少 AND/OR，此处是{_describe(token)}{hint}"

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.peek().kind == "OR":
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while self.peek().kind == "AND":
            self.take()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_expr(self) -> Node:
        if self.peek().kind == "NOT":
            token = self.take()
            self._enter(token)
            try:
                return Not(self.not_expr())
            finally:
                self.depth -= 1
        return self.near_expr()

    def _enter(self, token: Token) -> None:
        # One level per "(" and per NOT: the recursion depth of this parser and of every walker of its tree.
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RuleSyntaxError(f"嵌套过深：括号和 NOT 最多嵌套 {MAX_NESTING} 层", token.position)

    def near_expr(self) -> Node:
        start = self.peek().position
        left = self.operand()
        token = self.peek()
        if token.kind != "NEAR":
            return left
        self.take()
        right = self.operand(near_side=True)
        if not isinstance(left, Term):
            raise RuleSyntaxError("NEAR 左边只能是词或带引号的短语", start)
        assert isinstance(right, Term)
        if not set(left.fields) & set(right.fields):
            raise RuleSyntaxError("NEAR 两边的词限定在不同字段", token.position)
        if self.peek().kind == "NEAR":
            raise RuleSyntaxError("NEAR 不能连用，请用 AND 组合", self.peek().position)
        return Near(left, right, token.distance)

    def operand(self, near_side: bool = False) -> Node:
        token = self.peek()
        if token.kind == "FIELD":
            self.take()
            if self.scope is not None:
                raise RuleSyntaxError("字段限定不能嵌套", token.position)
            nxt = self.peek()
            if nxt.kind not in ("TERM", "LPAREN") or nxt.position != token.end:
                raise RuleSyntaxError(f"{token.text}: 后面应紧跟词或 '('", nxt.position)
            # The tokenizer made FIELD tokens of known field names only: this finds the typed one.
            self.scope = (next(f for f in FIELDS if f == token.text),)
            try:
                return self.operand(near_side)
            finally:
                self.scope = None
        if token.kind == "TERM":
            self.take()
            text = fold_term(token.text)
            return Term(text, token.text, self.scope or FIELDS, token.position)
        if near_side and token.kind in ("LPAREN", "NOT", "NEAR"):
            raise RuleSyntaxError("NEAR 右边只能是词或带引号的短语", token.position)
        if token.kind == "LPAREN":
            self.take()
            self._enter(token)
            if self.peek().kind == "RPAREN":
                raise RuleSyntaxError("括号内为空", self.peek().position)
            node = self.or_expr()
            close = self.peek()
            if close.kind == "EOF":
                raise RuleSyntaxError("左括号 '(' 没有闭合", token.position)
            if close.kind != "RPAREN":
                raise RuleSyntaxError(self._missing_operator(close), close.position)
            self.take()
            self.depth -= 1
            return node
        previous = self.tokens[self.i - 1] if self.i else None
        if previous is not None and previous.kind in ("AND", "OR", "NOT", "NEAR"):
            raise RuleSyntaxError(f"{previous.text} 后面缺少词，此处是{_describe(token)}", token.position)
        raise RuleSyntaxError(f"此处应为词，却是{_describe(token)}", token.position)


def parse(expr: str) -> Node:
    """Parse a rule expression into its syntax tree; raise RuleSyntaxError with a position."""
    return _Parser(expr).parse()
