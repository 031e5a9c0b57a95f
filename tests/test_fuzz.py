"""Random command lines: every command and option with random values and paths.

Whatever is typed, the answer is a result (exit 0), a finding (exit 1, check) or one
line on stderr (exit 2); never a traceback, never a hang. The generator is seeded
(``BLOCKPROF_FUZZ_SEED`` picks another sequence, ``BLOCKPROF_FUZZ_CASES`` another
length), so a failure names the seed and the case that reproduces it. Timing is
left out (``--no-time``, no ``--time``): the values of the timing options are still
parsed and checked, and the whole test stays within about a minute on two cores.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blockprof.cli import COMMANDS, cli
from blockprof.grid import Grid
from blockprof.sweep import sweep

SEED = int(os.environ.get("BLOCKPROF_FUZZ_SEED", "20261129"))
CASES = int(os.environ.get("BLOCKPROF_FUZZ_CASES", "120"))
#: seconds one invocation may take before it counts as a hang (counts only: a few seconds at most, on a loaded machine)
HANG_S = 60

NUMBERS = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "4",
    "8",
    "16",
    "1.5",
    "0.25",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "1e-320",
    "9223372036854775807",
    "99999999999999999999",
    "",
    "abc",
    "8,",
    ",",
    "8,16",
    "0x10",
    " 8",
    "2,0",
    "-0",
    "4.0",
]
SMALL = ["1", "2", "4", "8", "16", "0", "-3", "nan", "inf", "abc", "", "4,8", "8.5", "1e3"]
WORDS = [
    "basic",
    "bottleneck",
    "inverted_residual",
    "resnet18",
    "nope",
    "",
    "basic,bottleneck",
    "mod:fn",
    "os:system",
    ",",
    "é",
    "torch",
    "fvcore,thop",
    "none",
    "macs",
    "fwd_ms",
    "params",
    "json",
    "csv",
    "table",
    "markdown",
    "parquet",
    "xml",
]
FORMATS = ["table", "json", "csv", "markdown", "parquet", "xml", ""]


def paths(tmp: Path) -> list[str]:
    """Output and input paths of every awkward kind (all under ``tmp``; the test runs in ``tmp``)."""
    (tmp / "adir").mkdir(exist_ok=True)
    (tmp / "file.txt").write_text("not a run\n")
    (tmp / "bad.toml").write_text("channels = [\n")
    (tmp / "bad.json").write_text('{"format": 1}')
    return [
        str(tmp / "out.txt"),
        str(tmp / "missing" / "out.txt"),
        str(tmp / "adir"),
        str(tmp / ("n" * 300)),
        ".",
        "",
        str(tmp / "file.txt"),
        str(tmp / "file.txt" / "x"),
        str(tmp / "run"),
        str(tmp / "run2"),
        str(tmp / "bad.toml"),
        str(tmp / "bad.json"),
        str(tmp / "new-run"),
        str(tmp / "adir" / "x.html"),
        "\x7f",
        "a" * 5000,
    ]


def option_table(p: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per command, each option (or ``ARG``, the positional) and the values drawn for it."""
    variants = {
        "--stride": SMALL,
        "--out-channels": NUMBERS,
        "--expansion": NUMBERS,
        "--groups": SMALL,
        "--width-per-group": SMALL,
        "--se": ["0", "0.25", "1", "nan", "-0.5", "abc", "0.25,0.5"],
        "--kernel": ["3", "4", "5", "7", "0", "x"],
        "--activation": ["relu", "silu", "hardswish", "gelu", ""],
        "--se-style": ["standard", "efficientnet", "regnet", "x"],
    }
    axes = {"--channels": NUMBERS, "--spatial": SMALL, "--batch": SMALL, "--blocks": WORDS, "--block": WORDS}
    timing = {
        "--min-run-time": NUMBERS,
        "--threads": NUMBERS,
        "--device": ["cpu", "auto", "cuda", "tpu"],
        "--dtype": ["float32", "bfloat16", "float64"],
    }
    suite = {
        "--suite": p,
        "--tolerance": NUMBERS,
        "--alpha": NUMBERS,
        "--comparison": ["auto", "raw", "x"],
        "--rounds": NUMBERS,
        "--sample-time": NUMBERS,
        "--mode": ["fwd", "train", "x"],
    }
    return {
        "compare": {
            **axes,
            **variants,
            **timing,
            "--tools": WORDS,
            "--format": FORMATS,
            "--reference": WORDS,
            "--budget-params": NUMBERS,
            "--budget-macs": NUMBERS,
            "-o": p,
            "--html": p,
        },
        "explain": {
            "ARG": WORDS,
            "--channels": NUMBERS,
            "--spatial": SMALL,
            "--batch": SMALL,
            **variants,
            "--threads": NUMBERS,
            "--device": ["cpu", "x"],
        },
        "blocks": {"--channels": NUMBERS},
        "network": {
            "ARG": ["resnet18", "resnet50", "mobilenet_v2", "vgg", ""],
            "--block": WORDS,
            "--spatial": ["32", "64", "0", "31", "abc", "inf"],
            "--batch": SMALL,
            "--tools": ["torch", "none", "x"],
            "--format": FORMATS,
            "-o": p,
            "--explain": [],
        },
        "sweep": {
            **axes,
            **variants,
            "--tools": ["none", "torch", "x"],
            "--min-run-time": NUMBERS,
            "--rounds": NUMBERS,
            "--min-runs": NUMBERS,
            "--threads": NUMBERS,
            "--shard": ["1/2", "2/2", "0/2", "3/2", "a", "1/0"],
            "-o": p,
            "--resume": [],
            "--retry-failed": [],
            "--grid": p,
        },
        "show": {
            "ARG": p,
            "--pivot": WORDS,
            "--where": ["spatial=4", "block=basic", "x", "=", "a=b"],
            "--reference": WORDS,
            "--format": FORMATS,
            "-o": p,
        },
        "merge": {"ARG": p, "ARG2": p, "-o": p, "--allow-mixed": []},
        "plot": {"ARG": p, "-o": p, "--plots": ["counts", "latency", "x", ","]},
        "report": {"ARG": p, "-o": p, "--title": WORDS, "--reference": WORDS, "--timestamp": ["none", "now", "x"]},
        "check": {
            **axes,
            **variants,
            **suite,
            "--baseline": p,
            "--fallback-baseline": p,
            "--markdown": p,
            "--junit": p,
            "--update": [],
        },
        "baseline": {**axes, **variants, **suite, "-o": p},
        "model": {
            "ARG": [
                "blockprof.blocks.nn:SqueezeExcite",
                "tests.model_fixtures:needs_args",
                "tests.model_fixtures:raises",
                "tests.model_fixtures:not_a_module",
                "no.such:thing",
                "x",
            ],
            "--input": ["1,3,8,8", "1,3,x", "0,3,8,8", "", "1,3,9999999,1"],
            "--depth": SMALL,
            "--format": FORMATS,
            "-o": p,
        },
        "calibrate": {"--threads": ["0", "-1", "nan", "x", "1e9"], "--dtype": ["x"], "--device": ["tpu"]},
    }


def command_line(rng: random.Random, command: str, table: dict[str, list[str]]) -> list[str]:
    args = {"baseline": ["baseline", "save"]}.get(command, [command])
    args += [rng.choice(table[k]) for k in ("ARG", "ARG2") if k in table]
    if command in ("compare", "check", "baseline"):
        args.append("--no-time")
    if command in ("compare", "network"):
        args += [
            "--tools",
            "torch",
        ]  # fvcore and thop run a real forward (seconds at default sizes); a drawn --tools overrides
    names = [k for k in table if not k.startswith("ARG")]
    for name in rng.sample(names, k=min(len(names), rng.randint(1, 5))):
        args += [name] if not table[name] else [name, rng.choice(table[name])]
    if command == "calibrate" and len(args) == 1:
        args += ["--threads", "0"]  # calibrate measures for seconds: only its refusals are fuzzed
    return args


class Hang(BaseException):
    """Raised by the alarm: an invocation ran past HANG_S (BaseException, so nothing in blockprof catches it)."""


def bounded(call: Callable[[], Any], seconds: float) -> Any:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_answer(args: list[str], timeout: float = HANG_S) -> None:
    try:
        result = bounded(lambda: CliRunner().invoke(cli, args), timeout)
    except Hang:
        pytest.fail(f"no answer within {timeout} s: blockprof {' '.join(map(repr, args))} (seed {SEED})")
    where = f"blockprof {' '.join(map(repr, args))} (seed {SEED})"
    assert result.exit_code in (0, 1, 2), (where, result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (where, repr(result.exception))
    assert "Traceback" not in result.output, (where, result.output)
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(lines) == 1, (where, result.stderr)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fuzz")
    sweep(Grid(channels=(8,), spatial=(4,)), tmp / "run", tools=())
    sweep(Grid(channels=(16,), spatial=(4,)), tmp / "run2", tools=())
    return tmp


@pytest.fixture
def fuzz_dir(two_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private working directory with two small runs; calibration caches stay inside it."""
    shutil.copytree(two_runs, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_random_command_lines_never_traceback_or_hang(fuzz_dir: Path) -> None:
    rng = random.Random(SEED)
    table = option_table(paths(fuzz_dir))
    assert set(table) == set(COMMANDS)  # a new command is fuzzed too, or this fails
    for _ in range(CASES):
        command = rng.choice(sorted(table))
        check_answer(command_line(rng, command, table[command]))


#: the cases the reliability probes found (issues 15 and 16), pinned
PINNED = [
    ["report", "run", "-o", "n" * 300],
    ["merge", "run", "run2", "-o", "n" * 300],
    ["show", "run", "-o", "."],
    ["compare", "--no-time", "--tools", "torch", "-o", "."],
    ["compare", "--no-time", "--tools", "torch", "--html", "."],
    ["plot", "run", "-o", "."],
    ["network", "resnet18", "--tools", "torch", "-o", "missing/x.txt"],
    ["compare", "--min-run-time", "inf"],
    ["compare", "--min-run-time", "nan"],
    ["compare", "--min-run-time", "-1"],
    ["sweep", "--channels", "8", "--time", "--min-run-time", "inf", "-o", "new"],
    ["sweep", "--channels", "8", "--time", "--rounds", "100000000", "-o", "new"],
    ["check", "--channels", "8", "--sample-time", "inf", "--baseline", "file.txt"],
    ["compare", "--threads", "100000"],
    ["merge", "run", "run", "-o", "m"],
    ["merge", "run", "run2", "-o", "run"],
    # found by the fuzz test below, fixed by the schema's bounds
    ["compare", "--no-time", "--channels", "9223372036854775807", "--tools", "torch"],
    ["compare", "--no-time", "--out-channels", "9223372036854775807", "--tools", "torch"],
    ["explain", "inverted_residual", "--expansion", "1e309", "--channels", "3"],
]


@pytest.mark.parametrize("args", PINNED, ids=lambda a: " ".join(a)[:60])
def test_the_probes_cases_are_one_line(fuzz_dir: Path, args: list[str]) -> None:
    result = bounded(lambda: CliRunner().invoke(cli, args), HANG_S)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output, result.stderr
