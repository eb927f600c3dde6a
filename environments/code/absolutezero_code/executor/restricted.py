"""RestrictedPython as a second layer of the static check.

RestrictedPython (https://restrictedpython.readthedocs.io) is the maintained library for
restricting untrusted Python at compile time. Its ``RestrictingNodeTransformer`` walks
the syntax tree and records an error for every construct outside its policy; it is made
to be subclassed. We use it as a *checker*: :func:`restriction_errors` runs it over the
tree :mod:`.policy` has already checked and that was already compiled (the transformer
rewrites the tree in place; the code that runs is compiled before that, from the tree
our own policy checked). The runtime sandbox (``guard.py``, the fork children) is
unchanged: this is defence in depth, not a substitute.

What it adds to the hand-written checks in :mod:`.policy`:

* **unknown syntax is rejected**: any AST node type RestrictedPython has not reviewed
  (``generic_visit``) is an error, so syntax added by a future Python is refused until
  somebody reviews it, where a deny-list would let it through;
* ``try ... except*`` (exception groups, a known sandbox-escape route), ``async``
  constructs, the ``metaclass=`` keyword, ``*`` imports, ``exec`` / ``eval`` calls;
* its list of frame / traceback / generator / coroutine internals (``f_back``,
  ``tb_frame``, ``gi_frame``, ``cr_frame``, ``f_generator`` ...) and ``__roles__`` names.

It also owns the *names* of definitions, parameters and import aliases (``def
__class__``, ``**__kw__``, ``import x as __y__``): :mod:`.policy` no longer checks those.
The hand-written attribute list stays whole, because the run-time guard in the fork
children (which do not load RestrictedPython) needs it.

Where this sandbox's policy differs from RestrictedPython's default, and why:

* **names and attributes starting with ``_``** (``_cache``, ``self._items``, ``__``)
  are allowed unless :func:`.policy.attribute_allowed` refuses them (dunders other than
  the safe special methods). RestrictedPython forbids them to protect the guard
  functions (``_getattr_``, ``_write_`` ...) its rewritten code calls; our code is not
  rewritten and calls no guards, so there is nothing to protect. Measured: RestrictedPython's
  default refuses 3 CruxEval programs for a variable named ``__``.
* **augmented assignment to items, slices and attributes** (``d[k] += 1``) is allowed:
  RestrictedPython refuses it only because its ``_inplacevar_`` guard cannot wrap it
  (11 CruxEval programs). Without rewriting there is no guard to bypass.
* **annotated assignments and ``match`` statements** are allowed (RestrictedPython has
  no visitor for them); their names and attributes are checked by both layers.
"""

from __future__ import annotations

import ast
import re

from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer

from . import policy

__all__ = ["INSPECT_ATTRIBUTES", "SandboxRestrictions", "restriction_errors"]

_LINE = re.compile(r"^Line (\d+|None): (.*?)\.?$", re.S)


class SandboxRestrictions(RestrictingNodeTransformer):
    """RestrictedPython's rules with this sandbox's differences (see the module docstring)."""

    def check_name(self, node, name, allow_magic_methods=False):  # type: ignore[override]
        if name is None:
            return
        if name.endswith("__roles__"):
            self.error(node, f'"{name}" is an invalid name because it ends with "__roles__"')
        elif not policy.attribute_allowed(name):
            self.error(node, f'"{name}" is not an allowed name')

    def visit_Attribute(self, node: ast.Attribute):  # type: ignore[override]
        if not policy.attribute_allowed(node.attr) or node.attr in INSPECT_ATTRIBUTES:
            self.error(node, f'"{node.attr}" is a restricted attribute')
        if node.attr.endswith("__roles__"):
            self.error(node, f'"{node.attr}" is an invalid attribute name because it ends with "__roles__"')
        return self.node_contents_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign):  # type: ignore[override]
        return self.node_contents_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign):
        return self.node_contents_visit(node)

    def _visit_match_node(self, node: ast.AST):
        return self.node_contents_visit(node)

    visit_Match = visit_match_case = visit_MatchValue = visit_MatchSingleton = _visit_match_node
    visit_MatchSequence = visit_MatchOr = _visit_match_node

    def visit_MatchMapping(self, node: ast.MatchMapping):
        self.check_name(node, node.rest)
        return self.node_contents_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass):
        for name in node.kwd_attrs:
            if not policy.attribute_allowed(name) or name in INSPECT_ATTRIBUTES:
                self.error(node, f'pattern attribute "{name}" is restricted')
        return self.node_contents_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs):
        self.check_name(node, node.name)
        return self.node_contents_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar):
        self.check_name(node, node.name)
        return self.node_contents_visit(node)


def _reason(error: str) -> str:
    """``Line 3: Eval calls are not allowed.`` -> ``Eval calls are not allowed (line 3)``,
    the style of :mod:`.policy`'s reasons."""
    match = _LINE.match(error)
    if match is None:
        return error
    line, message = match.groups()
    return f"{message} (line {line})" if line != "None" else message


def restriction_errors(tree: ast.Module) -> list[str]:
    """RestrictedPython's objections to ``tree``, as readable reasons (empty: none).

    The tree is rewritten in place by the transformer, so pass one that has already
    been compiled (or a throwaway copy).
    """
    checker = SandboxRestrictions()
    checker.visit(tree)
    return [_reason(error) for error in checker.errors]
