"""A transparent rule engine: regular expressions over sentences, with innocent contexts.

Why rules first: a reviewer must be able to say why a response was flagged and why a
look-alike was not. Every flag names the rule that raised it, every rule has an id, a
category and a one-line description, and the default rules are plain data
(:data:`absolutezero_oversight.default_rules.DEFAULT_RULES`).

How a rule is applied to a response:

1. the text is lower-cased, with a standalone capital "I" turned into ``ı`` (dotless i,
   same length) so that rules can tell the speaker "I" from a loop variable ``i``
   (:data:`~absolutezero_oversight.default_rules.SELF`); patterns are written in lower
   case and matched without ``re.IGNORECASE``, which is several times faster;
2. a rule runs only if the text holds the literal strings every match of its pattern
   must contain (:mod:`absolutezero_oversight.prefilter`, worked out once from the
   parsed pattern): most responses mention none of them and cost a few substring tests;
3. its ``pattern`` is searched over the whole text; its gaps are written not to cross
   ``. ! ?`` or a newline, so a match stays inside one sentence;
4. the sentence holding the match is cut out (between sentence ends or newlines), and
   the match is innocent, and dropped, when
   * the rule is ``negatable`` (the default) and a negation or prevention word ("not",
     "never", "n't", "avoid", "prevent", "detect", "refuse", "from", ...) stands in the
     same clause within 40 characters before the rule's core verb (the named group
     ``core``, ``core2``, ...; else the match start), as in "I will *not* copy my weights";
   * the sentence matches the rule's ``unless`` pattern (its documented innocent
     contexts: games, mocks and tests, quines, ...);
   * the rule has a ``require`` pattern (e.g. a first-person subject) and the sentence
     does not match it;
5. the evidence is the matched span of the original text with up to ``context``
   characters on each side.

Run ``python -m absolutezero_oversight`` for the table of the default rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from absolutezero.review import Flag

from absolutezero_oversight.prefilter import Requirement, passes, requirement

__all__ = ["NEGATION", "Rule", "RuleMatch", "RuleSet", "normalise", "rules_table"]

#: Negation and prevention words that make a following core verb innocent.
NEGATION = re.compile(
    r"(?:\b(?:not|never|no|cannot|without|avoid\w*|prevent\w*|detect\w*|refus\w*|against|instead\s+of|"
    r"rather\s+than|stop\w*|block\w*|forbid\w*|prohibit\w*|from|nor|neither)\b|n't\b)"
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_CLAUSE_BREAK = re.compile(r"[,;:(]|\b(?:but|however|although|though|whereas)\b")
_STANDALONE_I = re.compile(r"I(?<!\wI)(?!\w)")  # a literal first: fast scan
_UPPER_LITERAL = re.compile(r"(?<![\\?])[A-Z]")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED_CATEGORIES = ("flagged", "dropped", "none")
NEGATION_WINDOW = 40  # characters before the core verb that are searched for a negation


def normalise(text: str) -> str:
    """Lower-case ``text`` keeping its length (so match positions index the original),
    with a standalone capital "I" as ``ı``."""
    marked = _STANDALONE_I.sub("ı", text)
    lowered = marked.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer (e.g. "İ")
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in marked)
    return lowered


@dataclass(frozen=True)
class Rule:
    """One rule: ``id`` (``<category>.<name>`` by convention), its ``category``, the
    regular expression, a one-line description and its innocent contexts (see the module
    docstring). ``pattern`` may name its key verb phrase ``(?P<core>...)`` (or ``core2``,
    ``core3`` in other alternatives) so that the negation check looks before it."""

    id: str
    category: str
    pattern: str
    description: str
    unless: str = ""
    require: str = ""
    negatable: bool = True


@dataclass(frozen=True)
class RuleMatch:
    """A rule that fired: where, and the evidence a human reads."""

    rule: str
    category: str
    start: int
    end: int
    evidence: str


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None
    require: re.Pattern[str] | None
    cores: tuple[str, ...]
    required: Requirement | None  # what a text needs for a match (prefilter); None = always run


def _compile(rule: Rule) -> _Compiled:
    if not isinstance(rule, Rule):
        raise TypeError(f"rules must be Rule objects, got {type(rule).__name__}")
    if not rule.id or not isinstance(rule.id, str):
        raise ValueError(f"a rule needs a non-empty id, got {rule.id!r}")
    if not _CATEGORY.match(rule.category) or rule.category in _RESERVED_CATEGORIES:
        raise ValueError(
            f"rule {rule.id!r}: category {rule.category!r} must be a lower-case identifier (a-z, 0-9, _) "
            f"other than {', '.join(_RESERVED_CATEGORIES)}"
        )
    compiled: list[re.Pattern[str] | None] = []
    for name in ("pattern", "unless", "require"):
        text = getattr(rule, name)
        if not isinstance(text, str) or (name == "pattern" and not text):
            raise ValueError(f"rule {rule.id!r}: {name} must be a {'non-empty ' if name == 'pattern' else ''}string")
        upper = _UPPER_LITERAL.search(text)
        if upper:
            raise ValueError(
                f"rule {rule.id!r}: {name} has the capital letter {upper.group(0)!r} at {upper.start()}; rules are "
                "matched against the lower-cased response, so write them in lower case (ı is the speaker's 'I')"
            )
        try:
            compiled.append(re.compile(text) if text else None)
        except re.error as error:
            raise ValueError(f"rule {rule.id!r}: {name} is not a valid regular expression: {error}") from None
    pattern = compiled[0]
    assert pattern is not None
    cores = tuple(name for name in pattern.groupindex if name.startswith("core"))
    return _Compiled(rule, pattern, compiled[1], compiled[2], cores, requirement(rule.pattern))


class RuleSet:
    """A compiled set of rules.

    Args:
        rules: the rules (``None`` = :data:`~absolutezero_oversight.default_rules.DEFAULT_RULES`).
        categories: only rules of these categories run (``None`` = all).
        disabled: rule ids to leave out (each must exist).
        context: characters of context on each side of the evidence span.

    Raises:
        ValueError: duplicate or unknown rule ids, an invalid regex or category.
    """

    def __init__(
        self,
        rules: Sequence[Rule] | None = None,
        *,
        categories: Iterable[str] | None = None,
        disabled: Iterable[str] = (),
        context: int = 40,
    ) -> None:
        if rules is None:
            from absolutezero_oversight.default_rules import DEFAULT_RULES

            rules = DEFAULT_RULES
        ids = [rule.id for rule in rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule id(s) {duplicates}")
        disabled = list(disabled)
        unknown = [rule_id for rule_id in disabled if rule_id not in ids]
        if unknown:
            raise ValueError(f"cannot disable unknown rule id(s) {unknown}; known: {ids}")
        wanted = None if categories is None else set(categories)
        self.rules: tuple[Rule, ...] = tuple(
            rule for rule in rules
            if rule.id not in disabled and (wanted is None or rule.category in wanted)
        )
        self._compiled = tuple(_compile(rule) for rule in self.rules)
        self.context = int(context)

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories some rule of this set can flag, in rule order."""
        return tuple(dict.fromkeys(rule.category for rule in self.rules))

    def scan(self, text: str) -> list[RuleMatch]:
        """Every non-innocent match of every rule in ``text``, in rule order."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        lowered = normalise(text)
        found: list[RuleMatch] = []
        for compiled in self._compiled:
            if not passes(compiled.required, lowered):
                continue
            for match in compiled.pattern.finditer(lowered):
                start, end = _sentence(lowered, match.start(), match.end())
                sentence = lowered[start:end]
                if compiled.rule.negatable and _negated(lowered, start, _core_start(match, compiled.cores)):
                    continue
                if compiled.unless is not None and compiled.unless.search(sentence):
                    continue
                if compiled.require is not None and not compiled.require.search(sentence):
                    continue
                found.append(RuleMatch(compiled.rule.id, compiled.rule.category, match.start(), match.end(),
                                       _evidence(text, match.start(), match.end(), self.context)))
        return found

    def flags(self, text: str) -> tuple[Flag, ...]:
        """One :class:`~absolutezero.review.Flag` per flagged category (its first match),
        with ``source`` ``rule:<id>``."""
        first: dict[str, RuleMatch] = {}
        for match in self.scan(text):
            first.setdefault(match.category, match)
        return tuple(Flag(m.category, m.evidence, f"rule:{m.rule}") for m in first.values())


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence(s) holding ``text[start:end]``."""
    left = max(0, start - 400)
    for boundary in _SENTENCE_END.finditer(text, left, start):
        left = boundary.end()
    right_match = _SENTENCE_END.search(text, end)
    return left, (right_match.end() if right_match else len(text))


def _core_start(match: re.Match[str], cores: Sequence[str]) -> int:
    for name in cores:
        if match.start(name) >= 0:
            return match.start(name)
    return match.start()


def _negated(text: str, sentence_start: int, core: int) -> bool:
    """A negation in the same clause, at most NEGATION_WINDOW characters before ``core``."""
    window = text[max(sentence_start, core - NEGATION_WINDOW):core]
    breaks = list(_CLAUSE_BREAK.finditer(window))
    if breaks:
        window = window[breaks[-1].end():]
    return NEGATION.search(window) is not None


def _evidence(text: str, start: int, end: int, context: int) -> str:
    left, right = max(0, start - context), min(len(text), end + context)
    snippet = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + snippet[:400] + ("…" if right < len(text) else "")


def rules_table(rules: Sequence[Rule] | None = None) -> str:
    """The rules as a reStructuredText simple table (id, category, description)."""
    if rules is None:
        from absolutezero_oversight.default_rules import DEFAULT_RULES

        rules = DEFAULT_RULES
    widths = (36, 17, 58)
    rule_line = "  ".join("=" * w for w in widths)
    lines = [rule_line, "  ".join(h.ljust(w) for h, w in zip(("rule", "category", "flags"), widths)).rstrip(), rule_line]
    for rule in rules:
        lines.append("  ".join((rule.id.ljust(widths[0]), rule.category.ljust(widths[1]), rule.description)))
    lines.append(rule_line)
    return "\n".join(lines)

