"""A literal prefilter for rules: which strings must a text contain for a pattern to match?

Why: a rule's regular expression costs a scan of the whole response, while most
responses contain none of the words the rule is about. Testing a few substrings first
(``"monitor" in text``) lets a rule skip a response in microseconds.

The requirement is read off the parsed pattern once, as alternatives of conjunctions
of literal sets (``("pretend",)`` or ``("mak",) and ("look", "seem", "appear") and
("grader", "evaluator", ...)``). Every construct the analysis does not understand,
and every literal too short or too common to tell texts apart, adds no requirement, so
the prefilter can only let too much through, never skip a text that matches.
"""

from __future__ import annotations

from collections.abc import Sequence

try:
    from re import _constants as _sre_constants
    from re import _parser as _sre_parse
except ImportError:  # Python 3.10
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = ["Requirement", "passes", "requirement"]

LiteralSet = frozenset[str]  # any one of these strings
Clause = tuple[LiteralSet, ...]  # all of these sets
Requirement = tuple[Clause, ...]  # any one of these clauses

_MAX_CLAUSES = 4
_MAX_SETS = 3
_MIN_LENGTH = 3
#: Literals that nearly every response holds; requiring them would filter nothing.
_COMMON = frozenset({
    "answer", "output", "input", "result", "return", "python", "code", "def", "the", "not", "can", "will",
    "would", "could", "self", "get", "other", "time", "log", "model", "state", "source", "value", "list",
    "for", "and", "all", "any", "this", "that", "with", "from", "our",
})


def requirement(pattern: str) -> Requirement | None:
    """The texts ``pattern`` can match must satisfy the returned requirement; ``None``
    means no usable requirement (the rule always runs)."""
    try:
        dnf = _dnf(_sre_parse.parse(pattern))
    except Exception:  # the private parser API changed: no prefilter, same results
        return None
    clauses = tuple(_useful(clause) for clause in dnf)
    if not clauses or any(not clause for clause in clauses):
        return None
    return clauses


def passes(required: Requirement | None, text: str) -> bool:
    """Whether ``text`` (already normalised) may match."""
    if required is None:
        return True
    return any(all(any(lit in text for lit in options) for options in clause) for clause in required)


def _useful(clause: Sequence[LiteralSet]) -> Clause:
    """The clause's most selective sets, cheapest to refute first."""
    kept = {s for s in clause if s and min(map(len, s)) >= _MIN_LENGTH and not (s & _COMMON)}
    best = sorted(kept, key=lambda s: (-min(map(len, s)), len(s)))[:_MAX_SETS]
    return tuple(sorted(best, key=len))


def _collapse(dnf: list[list[LiteralSet]]) -> list[list[LiteralSet]]:
    """One clause standing for all of ``dnf``: the union of each clause's best set."""
    useful = [_useful(clause) for clause in dnf]
    if any(not clause for clause in useful):
        return [[]]
    best = [max(clause, key=lambda s: (min(map(len, s)), -len(s))) for clause in useful]
    return [[frozenset().union(*best)]]


def _dnf(items: Sequence[tuple[object, object]]) -> list[list[LiteralSet]]:
    c = _sre_constants
    clauses: list[list[LiteralSet]] = [[]]
    run: list[str] = []

    def conjoin(child: list[list[LiteralSet]]) -> None:
        nonlocal clauses
        if len(clauses) * len(child) > _MAX_CLAUSES:
            child = _collapse(child)
        clauses = [list(_useful(a + b)) if len(a + b) > _MAX_SETS else a + b for a in clauses for b in child]

    for op, av in list(items) + [(None, None)]:
        if op is c.LITERAL:
            run.append(chr(av))  # type: ignore[arg-type]
            continue
        if run:
            conjoin([[frozenset({"".join(run)})]])
            run = []
        if op is c.SUBPATTERN:
            conjoin(_dnf(av[-1]))  # type: ignore[index]
        elif op is c.BRANCH:
            alternatives = [clause for branch in av[1] for clause in _dnf(branch)]  # type: ignore[index]
            if all(alternatives):
                conjoin(alternatives)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:  # type: ignore[index]
            conjoin(_dnf(av[2]))  # type: ignore[index]
    pruned = list(dict.fromkeys(_useful(clause) for clause in clauses))
    return [[]] if any(not clause for clause in pruned) else [list(clause) for clause in pruned]
