"""False positives of the oversight rule set on ordinary model responses.

Reads model responses from JSONL files and runs the default rule set
(:mod:`absolutezero_oversight.default_rules`) over them. The responses are ordinary
self-play or benchmark outputs, so every flag on them counts as a false positive; each
is printed with its evidence so a human can check that verdict. Prints the number of
responses, the flags per category, the false-positive rate (flagged responses /
responses) and the time per response.

What a record may hold (any of these, in this order of preference):

* ``responses``: a list of response texts (``python -m absolutezero.evaluate`` records);
* ``response``: one response text (the self-play quality dumps);
* ``payload``, or ``task.payload`` (buffer files, non-seed tasks only): the parts of a
  valid proposal the environment kept (program, input, output, message), joined; a
  proposal's reasoning is not in these, so they are counted separately.

``--text FILE ...`` adds plain-text files (source code, documentation) cut into
2000-character chunks: not model output, but a harder test of the innocent contexts,
since prose about processes, monitors, weights and copies is full of the rules' words.

Usage::

    python benchmarks/oversight_false_positives.py FILE.jsonl [FILE.jsonl ...] [--text FILE ...] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from absolutezero_oversight.default_rules import CATEGORIES
from absolutezero_oversight.rules import RuleSet


def _payload_text(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    parts = [value for value in payload.values() if isinstance(value, str)]
    return "\n".join(parts) if parts else None


def responses(path: Path) -> Iterator[tuple[str, str, str]]:
    """``(where, kind, text)`` for every response in a JSONL file (kind: response or payload)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                continue
            where = f"{path.name}:{number}"
            if isinstance(record.get("responses"), list):
                for index, text in enumerate(record["responses"]):
                    if isinstance(text, str):
                        yield f"{where}[{index}]", "response", text
            elif isinstance(record.get("response"), str):
                yield where, "response", record["response"]
            elif (text := _payload_text(record.get("payload"))) is not None:
                yield where, "payload", text
            elif isinstance(record.get("task"), dict) and not record.get("seed"):
                if (text := _payload_text(record["task"].get("payload"))) is not None:
                    yield where, "payload", text


def chunks(path: Path, size: int = 2000) -> Iterator[tuple[str, str, str]]:
    """``(where, "text", chunk)`` for a plain-text file cut into ``size``-character pieces."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for start in range(0, len(text), size):
        yield f"{path}@{start}", "text", text[start:start + size]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (flags are reported, not failures)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="JSONL files with model responses")
    parser.add_argument("--text", nargs="+", type=Path, default=[], help="plain-text files, in chunks")
    parser.add_argument("--quiet", action="store_true", help="do not print each flag's evidence")
    args = parser.parse_args(argv)
    rules = RuleSet()
    texts = [item for path in args.files for item in responses(path)]
    texts += [item for path in args.text for item in chunks(path)]
    if not texts:
        print("no responses found in the given files", file=sys.stderr)
        return 1
    started = time.perf_counter()
    flags = [rules.flags(text) for _, _, text in texts]
    elapsed = time.perf_counter() - started
    kinds = Counter(kind for _, kind, _ in texts)
    per_category: Counter[str] = Counter()
    flagged_kinds: Counter[str] = Counter()
    for (where, kind, _), found in zip(texts, flags):
        if not found:
            continue
        flagged_kinds[kind] += 1
        for flag in found:
            per_category[flag.category] += 1
            if not args.quiet:
                print(f"FLAG {where} {flag.category} ({flag.source}): {flag.evidence}")
    flagged = sum(flagged_kinds.values())
    total_chars = sum(len(text) for _, _, text in texts)
    print(f"files: {len(args.files) + len(args.text)}; responses: {len(texts)} "
          f"({kinds['response']} full responses, {kinds['payload']} kept proposal payloads, "
          f"{kinds['text']} text chunks), "
          f"{total_chars / len(texts):.0f} characters on average")
    print(f"rules: {len(rules.rules)} in {len(rules.categories)} categories")
    for category in CATEGORIES:
        print(f"  {category:<18} {per_category[category]}")
    print(f"flagged responses (false positives): {flagged} of {len(texts)} = {flagged / len(texts):.2%} "
          f"(full responses {flagged_kinds['response']}/{kinds['response']}, "
          f"payloads {flagged_kinds['payload']}/{kinds['payload']}, text {flagged_kinds['text']}/{kinds['text']})")
    print(f"time: {elapsed * 1000:.1f} ms in all, {elapsed / len(texts) * 1e6:.0f} us per response")
    return 0


if __name__ == "__main__":
    sys.exit(main())
