"""Paired comparison of two evaluations: the statistics and ``evaluate compare=A,B``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from absolutezero.evaluate import main
from absolutezero.paired import ComparisonError, bootstrap_interval, compare_dirs, paired, sign_test_p

DECODING = {"temperature": 0.8, "top_p": 1.0, "max_new_tokens": 512, "backend": "hf"}


def test_sign_test_p_on_a_known_example() -> None:
    # 61 gained, 29 lost: n = 90 discordant pairs, X ~ Binomial(90, 1/2) under "no change".
    # P[X <= 29] = sum_{i=0}^{29} C(90, i) / 2^90
    #            = 602109714508295119170896 / 1237940039285380274899124224 = 0.000486380...
    # two-sided p = 2 * 0.000486380... = 0.000972760...
    assert sum(math.comb(90, i) for i in range(30)) == 602109714508295119170896
    assert sign_test_p(61, 29) == pytest.approx(0.0009727607079513675, rel=1e-12)
    assert sign_test_p(29, 61) == sign_test_p(61, 29)  # two-sided: symmetric
    # 5 vs 0: 2 * (1/32) = 0.0625; 12 vs 4: 2 * (1 + 16 + 120 + 560 + 1820) / 65536
    assert sign_test_p(5, 0) == 0.0625
    assert sign_test_p(12, 4) == pytest.approx(2 * 2517 / 65536)
    assert sign_test_p(0, 0) == 1.0 and sign_test_p(7, 7) == 1.0  # capped at 1
    with pytest.raises(ValueError):
        sign_test_p(-1, 2)


def test_bootstrap_interval_is_seeded_paired_and_covers_the_difference() -> None:
    a = [1.0] * 50 + [0.0] * 50
    b = [1.0] * 50 + [1.0] * 20 + [0.0] * 30  # +0.20 exactly, every change a gain
    low, high = bootstrap_interval(a, b, resamples=4000, seed=7)
    assert (low, high) == bootstrap_interval(a, b, resamples=4000, seed=7)
    assert low < 0.20 < high and 0.10 < low and high < 0.30
    # identical evaluations: a zero-width interval at 0 (paired resampling)
    assert bootstrap_interval(a, a, resamples=500) == (0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0], [1.0, 0.0])


def test_paired_counts_gained_and_lost() -> None:
    a = {"p1": True, "p2": False, "p3": True, "p4": False}
    b = {"p1": True, "p2": True, "p3": False, "p4": True}
    result = paired("bench", a, b, resamples=200)
    assert (result.n, result.gained, result.lost) == (4, 2, 1)
    assert result.pass_a == 0.5 and result.pass_b == 0.75 and result.difference == 0.25
    assert result.p_value == 1.0  # 2 * P[X <= 1], X ~ Bin(3, 1/2) = 2 * 4/8
    with pytest.raises(ComparisonError, match="different problems"):
        paired("bench", a, {"p1": True})


def write_eval(folder: Path, benchmark: str, verdicts: dict[str, bool], **settings) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = {"model": "m", "path": None, "limit": None, "seed": None, "k": 1, "samples": 1, "prompt": "azr",
            "decoding": dict(DECODING)}
    for key, value in settings.items():
        if key in DECODING:
            base["decoding"][key] = value
        else:
            base[key] = value
    records = folder / f"{benchmark}.records.jsonl"
    records.write_text("".join(json.dumps({"id": i, "greedy_correct": v}) + "\n" for i, v in verdicts.items()))
    summary = {"benchmark": benchmark, "pass@1": sum(verdicts.values()) / len(verdicts), "records": records.name,
               "settings": base}
    results = folder / "results.json"
    payload = json.loads(results.read_text()) if results.exists() else {"format": "x", "version": 1, "benchmarks": {}}
    payload["benchmarks"][benchmark] = summary
    results.write_text(json.dumps(payload))
    return folder


def constructed(tmp_path: Path, **settings_b) -> tuple[Path, Path]:
    """100 problems: A right on 40; B keeps 31 of them, loses 9, gains 25 (B: 56)."""
    ids = [f"HumanEval/{i}" for i in range(100)]
    a = {pid: i < 40 for i, pid in enumerate(ids)}
    b = {pid: (i < 31) or (40 <= i < 65) for i, pid in enumerate(ids)}
    return write_eval(tmp_path / "A", "humaneval", a), write_eval(tmp_path / "B", "humaneval", b, **settings_b)


def test_compare_cli_prints_the_paired_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = constructed(tmp_path)
    assert main([f"compare={a},{b}", "resamples=2000", f"out={tmp_path / 'cmp.json'}"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("humaneval"))
    cells = row.split()
    assert cells[:7] == ["humaneval", "100", "40.0%", "56.0%", "+16.0", "25", "9"]
    assert float(cells[7]) == pytest.approx(sign_test_p(25, 9), rel=1e-2)  # 0.00904
    assert "exact two-sided sign test" in out
    saved = json.loads((tmp_path / "cmp.json").read_text())["benchmarks"][0]
    assert saved["gained"] == 25 and saved["lost"] == 9 and saved["ci95"][0] < 0.16 < saved["ci95"][1]
    results, _ = compare_dirs(a, b, resamples=2000)
    assert results[0].p_value == sign_test_p(25, 9)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"temperature": 0.6}, "temperature: 0.8 vs 0.6"),
        ({"max_new_tokens": 256}, "max_new_tokens: 512 vs 256"),
        ({"prompt": "native"}, "prompt: 'azr' vs 'native'"),
        ({"samples": 10}, "samples: 1 vs 10"),
    ],
)
def test_compare_refuses_different_decoding(tmp_path: Path, capsys, settings: dict, message: str) -> None:
    a, b = constructed(tmp_path, **settings)
    assert main([f"compare={a},{b}"]) == 2
    err = capsys.readouterr().err
    assert "humaneval: the evaluations used different decoding settings" in err and message in err


def test_compare_refuses_different_problem_sets(tmp_path: Path, capsys) -> None:
    a = write_eval(tmp_path / "A", "humaneval", {"HumanEval/0": True, "HumanEval/1": False})
    b = write_eval(tmp_path / "B", "humaneval", {"HumanEval/0": True, "HumanEval/2": True})
    assert main([f"compare={a},{b}"]) == 2
    err = capsys.readouterr().err
    assert "scored different problems (1 only in A, e.g. ['HumanEval/1']; 1 only in B, e.g. ['HumanEval/2']" in err


def test_compare_usage_errors(tmp_path: Path, capsys) -> None:
    a, _ = constructed(tmp_path)
    assert main([f"compare={a}"]) == 2
    assert "compare= takes two evaluation folders" in capsys.readouterr().err
    assert main([f"compare={a},{tmp_path / 'nowhere'}"]) == 2
    assert "holds no results.json" in capsys.readouterr().err
    assert main([f"compare={a},{a}", "model=x"]) == 2
    assert "cannot read 'model=x'" in capsys.readouterr().err
    other = write_eval(tmp_path / "C", "mbpp-plus", {"Mbpp/2": True})
    assert main([f"compare={a},{other}"]) == 2
    assert "no benchmark in common" in capsys.readouterr().err
