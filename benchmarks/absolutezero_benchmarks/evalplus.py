"""HumanEval+ and MBPP+ (EvalPlus, Liu et al. 2023): differential tests on many inputs.

Data: EvalPlus's published JSONL (``HumanEvalPlus.jsonl.gz``, ``MbppPlus.jsonl.gz``):
``task_id``, ``prompt``, ``entry_point``, ``canonical_solution``, ``base_input`` and
``plus_input`` (lists of argument lists), ``atol``. As in EvalPlus, the expected outputs
are those of the reference solution: they are computed here, in the sandbox, once per
run, the reference running as trusted code (``run_many(trusted="reference")``: it is
benchmark data, and HumanEval/160's and /162's use ``eval`` and ``hashlib``); a
reference that fails or returns a value without a literal form, e.g. NaN, makes the
problem skipped with the reason. A completion passes when it returns the expected
value for every base *and* plus input (HumanEval+ / MBPP+ "plus" scores), compared as
EvalPlus does: ``==``, else ``allclose`` with the row's ``atol`` (1e-6 for floats when
it is 0), plus EvalPlus's special oracles (MBPP set-valued and not-None tasks, four
MBPP tasks, HumanEval/32). Unlike EvalPlus, an output must be a plain value of builtin
types, and the whole test of a problem has one time limit (``env_options.timeout``).

MBPP+ stores tuples, sets and complex numbers of some tasks' inputs as JSON lists and
strings; they are turned back as EvalPlus does (:func:`mbpp_inputs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from absolutezero_benchmarks.codegen import PLAIN_VALUE_TEST, CodeGenBenchmark, CodeProblem, CodeTest, to_source
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.humaneval import code_statement, humaneval_row, prompt_preamble
from absolutezero_benchmarks.sources import Row, Source, unique_ids

__all__ = ["EvalPlusBenchmark", "HumanEvalPlus", "MBPPPlus", "diff_test", "mbpp_inputs"]

#: Seconds the reference solution may take on all inputs of one problem.
GOLD_TIMEOUT = 60.0

_COMPARE = '''
def _floats(value):
    if type(value) is float:
        return True
    return type(value) in (list, tuple) and len(value) > 0 and all(type(item) is float for item in value)


def _close(out, exp, atol):
    if type(exp) in (list, tuple):
        return type(out) in (list, tuple) and len(out) == len(exp) and all(_close(a, b, atol) for a, b in zip(out, exp))
    if type(out) not in (bool, int, float) or type(exp) not in (bool, int, float):
        return False
    return abs(out - exp) <= atol + 1e-07 * abs(exp)


def _same(out, exp, args):
    if not _plain(out):
        return False
    if out == exp:
        return True
    atol = _ATOL
    if atol == 0 and _floats(exp):
        atol = 1e-06
    return atol != 0 and type(out) is type(exp) and _close(out, exp, atol)
'''

#: EvalPlus's special oracles (by entry point), written with builtins only.
_ORACLES = {
    "set": (
        "def _judge(out, exp, args):\n"
        "    return _plain(out) and type(out) in (list, tuple, set) and set(out) == set(exp)\n"
    ),
    "not_none": (
        "def _judge(out, exp, args):\n"
        "    return (out == exp) if type(out) is bool else (exp == (out is not None))\n"
    ),
    "any": "def _judge(out, exp, args):\n    return True\n",
    "or_zero": "def _judge(out, exp, args):\n    return _same(out, exp, args) or (_plain(out) and out == 0)\n",
    "surface_area": (
        "def _area(base_edge, height):\n"
        "    slant = ((base_edge / 2) ** 2 + height ** 2) ** 0.5\n"
        "    return round(base_edge ** 2 + 4 * (base_edge * slant) / 2)\n\n"
        "def _judge(out, exp, args):\n"
        "    return _same(out, exp, args) or (type(out) in (int, float) and abs(out - _area(*args)) <= _ATOL)\n"
    ),
    "digit_distance": (
        "def _distance(a, b):\n"
        "    a, b = str(a), str(b)\n"
        "    size = max(len(a), len(b))\n"
        "    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(size), b.zfill(size)))\n\n"
        "def _judge(out, exp, args):\n"
        "    return _same(out, exp, args) or (_plain(out) and out == _distance(*args))\n"
    ),
    "poly_root": (
        "def _judge(out, exp, args):\n"
        "    if type(out) not in (int, float):\n"
        "        return False\n"
        "    return abs(sum(c * float(out) ** i for i, c in enumerate(args[0]))) <= _ATOL\n"
    ),
    "": "def _judge(out, exp, args):\n    return _same(out, exp, args)\n",
}

_LOOP = '''
for _index in range(len(_INPUTS)):
    _args = _INPUTS[_index]
    if not _judge(candidate(*_args), _EXPECTED[_index], _args):
        raise AssertionError(f"wrong output for test input {_index + 1} of {len(_INPUTS)}")
'''


def diff_test(inputs_source: str, expected_source: str, atol: float, oracle: str = "") -> str:
    """Test code calling ``candidate(*args)`` on every input and judging each output."""
    return (
        f"{PLAIN_VALUE_TEST}\n_INPUTS = {inputs_source}\n_EXPECTED = {expected_source}\n_ATOL = {atol!r}\n"
        f"{_COMPARE}\n{_ORACLES[oracle]}{_LOOP}"
    )


def _tuples(value: Any) -> Any:
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


#: MBPP+ task number -> how its JSON inputs become Python arguments (as EvalPlus does).
_MBPP_CONVERT: dict[int, Callable[[list], Any]] = {}
for _n in (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809):
    _MBPP_CONVERT[_n] = lambda inp: [tuple(x) for x in inp]
for _n in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
    _MBPP_CONVERT[_n] = lambda inp: [[tuple(x) for x in xs] for xs in inp]
for _n in (75, 413, 444, 753):
    _MBPP_CONVERT[_n] = lambda inp: [[tuple(x) for x in inp[0]], inp[1]]
for _n in (106, 750):
    _MBPP_CONVERT[_n] = lambda inp: [inp[0], tuple(inp[1])]
for _n in (250, 405, 446, 617, 720, 763, 808):
    _MBPP_CONVERT[_n] = lambda inp: [tuple(inp[0]), inp[1]]
for _n in (259, 401, 445):
    _MBPP_CONVERT[_n] = lambda inp: [tuple(tuple(x) for x in xs) for xs in inp]
for _n in (580, 615, 791):
    _MBPP_CONVERT[_n] = _tuples
_MBPP_CONVERT[115] = lambda inp: [[set(x) if isinstance(x, list) and x else {} for x in inp[0]]]
_MBPP_CONVERT[124] = lambda inp: (float(inp[0]), complex(inp[1]))
_MBPP_CONVERT[252] = lambda inp: [complex(inp[0])]
_MBPP_CONVERT[278] = lambda inp: [tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])]
_MBPP_CONVERT[307] = lambda inp: [tuple(inp[0]), inp[1], inp[2]]
_MBPP_CONVERT[722] = lambda inp: [{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]]

_MBPP_ORACLES = {
    "similar_elements": "set", "find_char_long": "set", "common_in_nested_lists": "set",
    "extract_singly": "set", "larg_nnum": "set", "intersection_array": "set",
    "find_dissimilar": "set", "Diff": "set", "check_str": "not_none", "text_match_three": "not_none",
    "text_starta_endb": "not_none", "are_equivalent": "any", "sum_div": "or_zero",
    "surface_Area": "surface_area", "digit_distance_nums": "digit_distance",
}


def mbpp_inputs(task_id: str, inputs: list) -> list:
    """MBPP+ inputs as Python arguments: tuples, sets and complex numbers of the tasks
    whose JSON stores them as lists and strings."""
    try:
        number = int(task_id.rsplit("/", 1)[-1])
    except ValueError:
        return inputs
    convert = _MBPP_CONVERT.get(number)
    return inputs if convert is None else [convert(inp) for inp in inputs]


class EvalPlusBenchmark(CodeGenBenchmark):
    """Base of HumanEval+ and MBPP+: rows -> problems; expected outputs in :meth:`specs`."""

    default_timeout = 20.0
    dataset = ""

    def gold_program(self, fields: dict[str, str]) -> str:
        raise NotImplementedError

    def oracle(self, entry_point: str) -> str:
        return ""

    def inputs(self, task_id: str, inputs: list) -> list:
        return inputs

    def parse(self, rows: list[Row]) -> list[CodeProblem]:
        """Rows -> problems (tests are built once the expected outputs are known).

        Raises:
            DatasetError: a malformed row.
        """
        problems = []
        humaneval = self.dataset == "humaneval"  # HumanEval prompts are code to continue; MBPP's are text
        for where, row in rows:
            fields = humaneval_row(where, row)
            for key in ("base_input", "plus_input"):
                if not isinstance(row.get(key, []), list):
                    raise DatasetError(f"{where}: {key!r} must be a list of argument lists")
            atol = row.get("atol", 0) or 0
            if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol):
                raise DatasetError(f"{where}: 'atol' must be a number, got {atol!r}")
            inputs = self.inputs(fields["task_id"], list(row.get("base_input", [])) + list(row.get("plus_input", [])))
            if not inputs or not all(isinstance(args, (list, tuple)) for args in inputs):
                raise DatasetError(f"{where}: no test inputs, or an input that is not an argument list")
            try:
                inputs_source = to_source(inputs)
            except TypeError as error:
                raise DatasetError(f"{where}: an input is not plain data ({error})") from None
            problems.append(
                CodeProblem(
                    id=fields["task_id"],
                    statement=code_statement(fields["prompt"]),
                    entry_points=(fields["entry_point"],),
                    tests=(),
                    preamble=prompt_preamble(fields["prompt"], fields["entry_point"]) if humaneval else "",
                    stub=fields["prompt"] if humaneval else "",
                    extra={"inputs": inputs_source, "atol": float(atol), "gold": self.gold_program(fields)},
                    task_prompt=fields["prompt"],
                )
            )
        unique_ids([p.id for p in problems], f"{self.name} data")
        return problems

    def specs(self, problems: Sequence[CodeProblem]) -> tuple[list[CodeProblem], list[dict[str, str]]]:
        """Each problem with its test: the reference's outputs, computed in the sandbox."""
        jobs = []
        for problem in problems:
            entry = problem.entry_points[0]
            call = f"{entry}(*a) is not None" if self.oracle(entry) == "not_none" else f"{entry}(*a)"
            wrapper = (
                f"\n\ndef f():\n    import copy\n    inputs = {problem.extra['inputs']}\n"
                f"    return [{call} for a in copy.deepcopy(inputs)]\n"
            )
            jobs.append((problem.extra["gold"] + wrapper, ""))
        timeout = max(GOLD_TIMEOUT, self.timeout)
        # The reference is benchmark data: trusted code (HumanEval+/160 evals, /162 imports hashlib)
        results = self.executor.run_many(jobs, determinism_runs=1, timeout=timeout, trusted="reference") if jobs else []
        ready, skipped = [], []
        for problem, result in zip(problems, results):
            if not result.ok:
                reason = f"the reference solution fails in the sandbox: {result.status.value}: {result.reason}"
                skipped.append({"id": problem.id, "reason": reason[:500]})
                continue
            oracle = self.oracle(problem.entry_points[0])
            test = diff_test(problem.extra["inputs"], result.output or "[]", problem.extra["atol"], oracle)
            ready.append(
                CodeProblem(
                    id=problem.id, statement=problem.statement, entry_points=problem.entry_points,
                    tests=(CodeTest(test),), preamble=problem.preamble, stub=problem.stub,
                    task_prompt=problem.task_prompt,
                )
            )
        return ready, skipped


class HumanEvalPlus(EvalPlusBenchmark):
    """HumanEval+: HumanEval's 164 problems with EvalPlus's extra inputs."""

    name = "humaneval-plus"
    dataset = "humaneval"
    source = Source(
        what="HumanEval+", env_var="ABSOLUTEZERO_HUMANEVAL_PLUS", relative="evalplus/HumanEvalPlus.jsonl.gz",
        hub="evalplus/humanevalplus",
    )

    def gold_program(self, fields: dict[str, str]) -> str:
        return fields["prompt"] + fields["canonical_solution"]

    def oracle(self, entry_point: str) -> str:
        return "poly_root" if entry_point == "find_zero" else ""


class MBPPPlus(EvalPlusBenchmark):
    """MBPP+: EvalPlus's curated MBPP problems with extra inputs."""

    name = "mbpp-plus"
    dataset = "mbpp"
    source = Source(
        what="MBPP+", env_var="ABSOLUTEZERO_MBPP_PLUS", relative="evalplus/MbppPlus.jsonl.gz",
        hub="evalplus/mbppplus",
    )

    def gold_program(self, fields: dict[str, str]) -> str:
        return fields["canonical_solution"]  # MBPP+'s reference is a whole program

    def oracle(self, entry_point: str) -> str:
        return _MBPP_ORACLES.get(entry_point, "")

    def inputs(self, task_id: str, inputs: list) -> list:
        return mbpp_inputs(task_id, inputs)
