"""LiveCodeBench code generation (Jain et al. 2024), ``release_v5`` format.

A row: ``question_id``, ``question_title``, ``question_content``, ``platform``,
``contest_date``, ``starter_code``, ``difficulty``, ``public_test_cases`` (a JSON list of
``{"input", "output", "testtype"}``), ``private_test_cases`` (the same, or in the real
release base64 of zlib of a *pickle* of that JSON text) and ``metadata`` (JSON with
``func_name`` for LeetCode problems). A program passes when it passes every public and
private test, each run as its own sandbox job (``env_options.timeout`` seconds, 6 by
default as in LiveCodeBench):

* ``stdin`` tests (AtCoder, Codeforces): the program runs as a script on the test's
  input (``input()``, ``sys.stdin``; :meth:`Executor.check_many`'s stdio mode) and its
  output must match line by line after stripping, tokens that are numbers comparing
  by value (LiveCodeBench's rule);
* ``functional`` tests (LeetCode): ``Solution().<func_name>(*args)`` with the test's
  JSON arguments must equal the JSON output (a tuple counting as a list), with common
  imports (``List``, ``defaultdict``, ...) put before the program as LiveCodeBench does.

Pickled private tests are never unpickled: :func:`private_tests` walks the pickle's
opcodes with :mod:`pickletools` (a parser; nothing is executed) and accepts only a
pickle of one string, which is then read as JSON. Anything else is refused with a
clear error. ``env_options.start_date`` / ``end_date`` (``YYYY-MM-DD``) keep the
problems of a contest-date window (the paper's LiveCodeBench is a window of v5).
"""

from __future__ import annotations

import base64
import binascii
import json
import pickletools
import zlib
from typing import Any

from absolutezero_benchmarks.codegen import PLAIN_VALUE_TEST, CodeGenBenchmark, CodeProblem, CodeTest, to_source
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.sources import Row, Source, text_field, unique_ids

__all__ = ["LiveCodeBench", "private_tests", "stdio_test", "functional_test"]

#: Decompressed size refused beyond this (a zlib bomb in a data file).
MAX_TESTS_BYTES = 1 << 30
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
_FRAME_OPS = frozenset({"PROTO", "FRAME", "MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT", "STOP"})

#: Imports put before a LeetCode-style program (LiveCodeBench adds ``import *`` of
#: these; the sandbox allows named imports only).
FUNCTIONAL_PREAMBLE = (
    "from typing import List, Dict, Tuple, Set, Optional\n"
    "from collections import defaultdict, Counter, deque, OrderedDict\n"
    "from functools import lru_cache, cache, reduce, cmp_to_key\n"
    "from itertools import accumulate, combinations, permutations, product, chain, groupby\n"
    "from heapq import heappush, heappop, heapify, heappushpop, nlargest, nsmallest\n"
    "from bisect import bisect_left, bisect_right, insort\n"
    "from math import gcd, inf, sqrt, ceil, floor, log, comb, isqrt\n"
    "import math, collections, itertools, functools, heapq, bisect, string, re\n"
)
_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code within "
    "delimiters."
)
_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
    "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, "
    "it reads the inputs, runs the algorithm and writes output to STDOUT."
)

_STDIO_COMPARE = '''
def _lines(text):
    return [line.strip() for line in text.strip().split("\\n")]


def _number(token):
    try:
        return float(token)
    except ValueError:
        return None


def _line_ok(got, want):
    if got == want:
        return True
    a, b = got.split(), want.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x != y and (_number(x) is None or _number(x) != _number(y)):
            return False
    return True


_got, _want = _lines(stdout), _lines(_EXPECTED)
if len(_got) != len(_want):
    raise AssertionError(f"wrong answer: {len(_got)} output lines, expected {len(_want)}")
for _index in range(len(_want)):
    if not _line_ok(_got[_index], _want[_index]):
        raise AssertionError(f"wrong answer on output line {_index + 1}")
'''


def _unpickle_text(data: bytes, where: str) -> str:
    """The one string a pickle holds, read with :func:`pickletools.genops` (which
    parses opcodes and runs nothing). Any other opcode is refused."""
    try:
        ops = [(opcode.name, argument) for opcode, argument, _ in pickletools.genops(data)]
    except ValueError as error:  # a malformed opcode stream
        raise DatasetError(f"{where}: the private tests are not a readable pickle ({error})") from None
    strings = [argument for name, argument in ops if name in _STRING_OPS]
    other = [name for name, _ in ops if name not in _STRING_OPS and name not in _FRAME_OPS]
    if other or len(strings) != 1:
        shown = f"opcode {other[0]}" if other else f"{len(strings)} strings"
        raise DatasetError(
            f"{where}: the private tests are a pickle of something other than one string ({shown}); "
            "refusing to unpickle untrusted data"
        )
    text = strings[0]
    if not isinstance(text, str):
        raise DatasetError(f"{where}: the private tests pickle holds no string")
    return text


def private_tests(value: object, where: str) -> list[Any]:
    """LiveCodeBench's ``private_test_cases``: JSON text, or base64(zlib(pickle(JSON text))).

    Raises:
        DatasetError: neither form, a pickle of anything but one string, or too large.
    """
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise DatasetError(f"{where}: 'private_test_cases' must be text, got {type(value).__name__}")
    if not value.strip():
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        packed = base64.b64decode(value.encode("ascii"), validate=False)
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, MAX_TESTS_BYTES)
    except (binascii.Error, zlib.error, UnicodeEncodeError) as error:
        raise DatasetError(f"{where}: 'private_test_cases' is neither JSON nor base64/zlib data ({error})") from None
    if inflater.unconsumed_tail:
        raise DatasetError(f"{where}: the private tests decompress to more than {MAX_TESTS_BYTES} bytes")
    try:
        return json.loads(_unpickle_text(data, where))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{where}: the unpacked private tests are not JSON ({error.msg})") from None


def stdio_test(case: dict[str, str]) -> CodeTest:
    """A stdin test: run on ``input``, compare the printed text with ``output``."""
    return CodeTest(f"_EXPECTED = {case['output']!r}\n{_STDIO_COMPARE}", stdin=case["input"])


def functional_test(case: dict[str, str], func_name: str, where: str) -> CodeTest:
    """A LeetCode test: ``Solution().<func_name>(*args)`` (or a top-level function)
    equals the JSON output."""
    try:
        args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
        expected = json.loads(case["output"])
        source = f"_ARGS = {to_source(args)}\n_EXPECTED = {to_source(expected)}\n"
    except (json.JSONDecodeError, TypeError) as error:
        raise DatasetError(f"{where}: a functional test is not JSON values ({error})") from None
    return CodeTest(
        f"{PLAIN_VALUE_TEST}\n{source}"
        f"_call = candidate().{func_name} if isinstance(candidate, type) else candidate\n"
        "_out = _call(*_ARGS)\n"
        "if type(_out) is tuple:\n    _out = list(_out)\n"
        "if not (_plain(_out) and _out == _EXPECTED):\n    raise AssertionError('wrong answer')\n"
    )


def _cases(value: object, where: str, what: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as error:
            raise DatasetError(f"{where}: {what!r} is not JSON ({error.msg})") from None
    if not isinstance(value, list):
        raise DatasetError(f"{where}: {what!r} must be a list of tests")
    for case in value:
        if not isinstance(case, dict) or not all(isinstance(case.get(k), str) for k in ("input", "output")):
            raise DatasetError(f"{where}: every test in {what!r} needs string 'input' and 'output'")
        if case.get("testtype", "stdin") not in ("stdin", "functional"):
            raise DatasetError(f"{where}: unknown testtype {case.get('testtype')!r}")
    return value


def statement(row: dict[str, Any], starter: str) -> str:
    """LiveCodeBench's own question template."""
    text = f"### Question:\n{row.get('question_content', '')}\n\n"
    if starter:
        text += f"### Format: {_STARTER}\n```python\n{starter}\n```\n\n"
    else:
        text += f"### Format: {_STDIN}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


class LiveCodeBench(CodeGenBenchmark):
    """LiveCodeBench code generation: public and private tests, all in the sandbox."""

    name = "livecodebench"
    source = Source(
        what="LiveCodeBench code generation", env_var="ABSOLUTEZERO_LIVECODEBENCH",
        relative="livecodebench/test5.jsonl", hub="livecodebench/code_generation_lite", hub_config="release_v5",
    )
    default_timeout = 6.0

    def parse(self, rows: list[Row]) -> list[CodeProblem]:
        """Rows -> problems in the contest-date window (``start_date``/``end_date``).

        Raises:
            DatasetError: a malformed row or test list, or a refused private-test pickle.
        """
        start, end = str(self.options.get("start_date") or ""), str(self.options.get("end_date") or "")
        problems = []
        for where, row in rows:
            question_id = text_field(row, where, "question_id")
            date = text_field(row, where, "contest_date", required=False)[:10]
            if (start and date < start) or (end and date > end):
                continue
            starter = text_field(row, where, "starter_code", required=False)
            metadata = row.get("metadata") or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata) if metadata.strip() else {}
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{where}: 'metadata' is not JSON ({error.msg})") from None
            cases = _cases(row.get("public_test_cases", []), where, "public_test_cases")
            cases += _cases(private_tests(row.get("private_test_cases", ""), where), where, "private_test_cases")
            if not cases:
                raise DatasetError(f"{where}: no tests")
            func_name = str(metadata.get("func_name") or "") if isinstance(metadata, dict) else ""
            functional = any(case.get("testtype") == "functional" for case in cases)
            if functional and not func_name.isidentifier():
                raise DatasetError(f"{where}: functional tests need metadata.func_name, got {func_name!r}")
            tests = tuple(
                functional_test(case, func_name, where) if case.get("testtype") == "functional" else stdio_test(case)
                for case in cases
            )
            problems.append(
                CodeProblem(
                    id=question_id,
                    statement=statement(row, starter),
                    entry_points=("Solution", func_name) if functional else (),
                    tests=tests,
                    preamble=FUNCTIONAL_PREAMBLE if functional else "",
                    extra={"platform": row.get("platform"), "difficulty": row.get("difficulty"), "date": date},
                )
            )
        unique_ids([p.id for p in problems], "LiveCodeBench data")
        if not problems:
            raise DatasetError(f"LiveCodeBench: no problem in the date window {start or '...'} to {end or '...'}")
        return problems
