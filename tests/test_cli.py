"""The CLI as a user meets it: output, formats, and bad input (one line, exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockprof.cli import COMMANDS, cli
from blockprof.records import COUNT_FIELDS

REQUIRED = [
    "block",
    "in_channels",
    "out_channels",
    "stride",
    "spatial",
    "batch",
    "params",
    "params_conv",
    "macs",
    "flops",
    "train_flops",
    "fvcore_macs",
    "thop_macs",
    "torch_macs",
]


def run(*args: str) -> tuple[int, str, str]:
    """Invoke the CLI; compare runs without timing here (tests/test_compare_timing.py times)."""
    if args and args[0] == "compare" and "--time" not in args:
        args = (*args, "--no-time")
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_compare_table_shows_the_seed_figures() -> None:
    code, out, _ = run("compare", "--channels", "256")
    assert code == 0
    assert "1,179,648" in out and "69,632" in out and "800,256" in out
    assert "5.9%" in out  # bottleneck conv weights are 5.9% of the BasicBlock's
    assert "known FlopCounterMode bug" in out  # the disagreement is explained, not hidden


def test_compare_json_schema() -> None:
    code, out, _ = run("compare", "--channels", "64", "--spatial", "14", "--format", "json")
    records = json.loads(out)
    assert code == 0 and [r["block"] for r in records] == ["basic", "bottleneck", "inverted_residual"]
    for r in records:
        assert set(REQUIRED) <= set(r)
        assert r["flops"] == 2 * r["macs"] and r["torch_macs"] == r["macs"]
        assert set(r) <= set(COUNT_FIELDS) | {"params_rel", "params_conv_rel", "macs_rel", "train_flops_rel"}


def test_compare_csv_markdown_and_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("compare", "--channels", "32", "--spatial", "8", "--format", "csv", "--tools", "torch")
    assert code == 0 and out.splitlines()[0].startswith("block,in_channels,out_channels")
    code, out, _ = run("compare", "--channels", "32", "--spatial", "8", "--format", "markdown", "--tools", "torch")
    assert code == 0 and out.startswith("### blockprof compare") and "\n| block" in out
    target = tmp_path / "c.json"
    code, _, err = run(
        "compare", "--channels", "32", "--spatial", "8", "--format", "json", "-o", str(target), "--tools", "torch"
    )
    assert code == 0 and len(json.loads(target.read_text())) == 3 and "wrote 3 rows" in err


def test_variant_options_apply_to_the_blocks_that_take_them() -> None:
    _code, out, _ = run(
        "compare", "--channels", "64", "--spatial", "8", "--expansion", "2", "--format", "json", "--tools", "torch"
    )
    by_block = {r["block"]: r for r in json.loads(out)}
    assert by_block["basic"]["expansion"] == 1 and by_block["bottleneck"]["inner_width"] == 32
    assert by_block["inverted_residual"]["inner_width"] == 128


def test_explain_shows_the_derivation() -> None:
    code, out, _ = run("explain", "bottleneck", "--channels", "256")
    assert code == 0
    assert "256·1·1·64 + 64·3·3·64 + 64·1·1·256 = 69,632" in out
    assert "56·56·64·3·3·64" in out and "218,365,952 MACs" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "--channels", "0"], "channels must be a whole number in [1, 1048576], got '0'"),
        (["compare", "--channels", "-5"], "channels must be a whole number in [1, 1048576]"),
        (["compare", "--channels", "abc"], "got 'abc'"),
        (["compare", "--channels", "9223372036854775807"], "channels must be a whole number in [1, 1048576]"),
        (["compare", "--spatial", "65537"], "spatial must be a whole number in [1, 65536]"),
        (["compare", "--batch", "1.5"], "batch must be a whole number"),
        (["compare", "--stride", "2.5"], "stride must be a whole number"),
        (["compare", "--se", "1"], "se must be a number in [0, 1)"),
        (["compare", "--expansion", "0"], "expansion must be a number in (0, 1024]"),
        (["compare", "--kernel", "4", "--blocks", "inverted_residual"], "kernel must be one of 3, 5, 7"),
        (["compare", "--activation", "gelu"], "activation must be one of relu, relu6, hardswish, silu"),
        (["compare", "--se-style", "fancy"], "se_style must be one of standard"),
        (
            ["compare", "--blocks", "basic", "--kernel", "5"],
            "option 'kernel' applies to none of the blocks basic; it applies to inverted_residual",
        ),
        (
            ["compare", "--blocks", "basic,bottleneck", "--se-style", "standard", "--se", "0.25"],
            "option 'se_style' applies to none",
        ),
        (
            ["explain", "basic", "--kernel", "5"],
            "basic does not take kernel (--kernel 5); only inverted_residual, fused_mbconv take it",
        ),
        (["compare", "--blocks", "resnet"], "unknown block 'resnet'"),
        (["compare", "--blocks", "bottleneck", "--channels", "66"], "not divisible by expansion 4"),
        (["compare", "--blocks", "bottleneck", "--groups", "3"], "not divisible by groups 3"),
        (["compare", "--format", "xml"], "'xml' is not one of"),
        (["compare", "--blocks", "basic", "--groups", "2"], "applies to none of the blocks"),
        (["compare", "--tools", "ptflops"], "unknown tool"),
        (["explain", "nope"], "unknown block 'nope'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["", *sorted(COMMANDS)])
def test_help_does_not_import_torch(command: str) -> None:
    """`blockprof --help` and every `blockprof COMMAND --help` stay light: no torch, pandas or plotly."""
    argv = ["blockprof", *([command] if command else []), "--help"]
    code = (
        f"import sys; from blockprof.cli import main; sys.argv={argv!r}\ntry: main()\nexcept SystemExit: pass\n"
        "print([m for m in ('torch', 'pandas', 'plotly', 'fvcore', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "blockprof", "compare", "--no-time", "--channels", "x"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


OPTION_VALUES = st.one_of(
    st.integers(-3, 3000).map(str),
    st.text(max_size=6),
    st.sampled_from(["1.5", "nan", "inf", "-0", "2,0", "4,", "1e3"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    option=st.sampled_from(
        [
            "--channels",
            "--spatial",
            "--batch",
            "--stride",
            "--expansion",
            "--groups",
            "--se",
            "--out-channels",
            "--width-per-group",
            "--blocks",
            "--format",
        ]
    ),
    value=OPTION_VALUES,
)
@pytest.mark.slow
def test_random_option_values_never_traceback(option: str, value: str) -> None:
    """Whatever a user types, the answer is a result or one line with exit 2."""
    args = ["compare", "--no-time", "--tools", "torch", "--spatial", "8", "--channels", "16", option, value]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)


def test_docs_document_every_record_field() -> None:
    from pathlib import Path

    root = Path(__file__).parent.parent
    schema = (root / "docs" / "reference" / "schema.md").read_text(encoding="utf-8")
    assert all(f"`{field}`" in schema for field in COUNT_FIELDS)
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "pip install . && blockprof compare --channels 256" in readme
    assert "pip install -e '.[test]' && pytest" in readme


@pytest.mark.slow
@pytest.mark.timing
def test_explain_time_shows_each_layers_share_of_time_and_macs(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    from blockprof.timing import layers

    # the command's 1 s per measurement is for real numbers; the shape of the table needs far less
    monkeypatch.setattr(layers, "layer_times", functools.partial(layers.layer_times, min_run_time=0.05))
    result = CliRunner().invoke(
        cli,
        [
            "explain",
            "inverted_residual",
            "--channels",
            "32",
            "--spatial",
            "16",
            "--time",
            "--device",
            "cpu",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line for line in result.stdout.splitlines() if line.strip().startswith(("conv_dw", "(whole"))
    }
    assert "conv_dw" in rows and "100.0%" in rows["(whole"]
    assert "time %" in result.stdout and "MACs %" in result.stdout


def test_every_command_module_is_registered_and_listed() -> None:
    """A command module that exists but is missing from the lazy map is unreachable."""
    import importlib
    import pkgutil

    import blockprof.commands

    modules = {m.name for m in pkgutil.iter_modules(blockprof.commands.__path__)}
    commands = {m for m in modules if hasattr(importlib.import_module(f"blockprof.commands.{m}"), "cli_command")}
    assert commands == set(COMMANDS)
    listed = CliRunner().invoke(cli, ["--help"]).stdout
    assert all(f"  {name}" in listed for name in COMMANDS)
