"""Shared test fixtures: the grid of block variants every count is checked over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from blockprof.spec import BlockSpec

# --- the user's own cache is never written by the tests ---


def user_cache_dir() -> Path:
    """The cache blockprof would use without the suite's override."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "blockprof"


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Each file under ``path`` with its size and modification time (empty if none)."""
    if not path.is_dir():
        return {}
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()}


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Point blockprof's cache (device peaks) at a temporary directory for the whole
    session, and fail at the end if the user's real cache changed meanwhile."""
    from blockprof.timing.calibrate import CACHE_ENV

    real = user_cache_dir()
    before = _snapshot(real)
    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("blockprof-cache"))
    try:
        yield Path(os.environ[CACHE_ENV])
    finally:
        if saved is None:
            del os.environ[CACHE_ENV]
        else:
            os.environ[CACHE_ENV] = saved
    assert _snapshot(real) == before, f"the test suite wrote into the user's cache {real}"


WIDTHS = (8, 24, 100, 256, 1024)  # includes widths that are not powers of two


def variant_grid(spatial: int = 16) -> list[BlockSpec]:
    """Every block × width × stride, plus in ≠ out, expansions 1/4/6, groups and SE."""
    specs = []
    for c in WIDTHS:
        for stride in (1, 2):
            specs += [
                BlockSpec("basic", c, stride=stride, spatial=spatial),
                BlockSpec("bottleneck", c, stride=stride, spatial=spatial),
                BlockSpec("inverted_residual", c, stride=stride, spatial=spatial),
            ]
        specs += [
            BlockSpec("basic", c, out_channels=2 * c, stride=2, spatial=spatial),
            BlockSpec("bottleneck", c, out_channels=4 * c, spatial=spatial),
            BlockSpec("bottleneck", c, expansion=1, spatial=spatial),
            BlockSpec("bottleneck", c, groups=2 if c % 8 == 0 else 5, spatial=spatial),
            BlockSpec("inverted_residual", c, expansion=1, spatial=spatial),
            BlockSpec("inverted_residual", c, expansion=4, out_channels=c + 8, stride=2, spatial=spatial),
            BlockSpec("inverted_residual", c, se=0.25, spatial=spatial),
            BlockSpec("basic", c, se=1 / 16, spatial=spatial, batch=3),
        ]
    specs += [
        BlockSpec("bottleneck", 256, groups=32, width_per_group=4, spatial=spatial),  # ResNeXt-50 32×4d stage 1
        BlockSpec("bottleneck", 512, groups=32, width_per_group=4, stride=2, se=1 / 16, spatial=spatial),
        # sizes the stride does not divide: (H − 1) // s + 1, torchvision's arithmetic (57 → 29)
        BlockSpec("basic", 64, out_channels=128, stride=2, spatial=57),
        BlockSpec("bottleneck", 64, out_channels=256, stride=2, spatial=57, se=0.25),
        BlockSpec("inverted_residual", 24, out_channels=32, stride=2, spatial=57),
        BlockSpec("inverted_residual", 24, stride=2, spatial=15, kernel=5, se=0.25),
        # the new variant fields: the depthwise kernel and the activation
        BlockSpec("inverted_residual", 40, kernel=7, activation="hardswish", spatial=spatial),
        BlockSpec("inverted_residual", 40, kernel=5, activation="silu", stride=2, spatial=spatial),
        BlockSpec("basic", 32, activation="silu", spatial=spatial),
        BlockSpec("bottleneck", 64, activation="relu6", groups=2, stride=2, spatial=spatial),
    ]
    return specs + variant_specs(spatial)


def variant_specs(spatial: int = 16) -> list[BlockSpec]:
    """Issue 10's variants over widths, strides, kernels, activations and SE styles: the
    MobileNetV3 / EfficientNet MBConv, Fused-MBConv and RegNet X / Y blocks, at an odd size too."""
    specs: list[BlockSpec] = []
    for c, stride, kernel, act, style in (
        (16, 1, 3, "relu", "mobilenetv3"), (24, 2, 5, "hardswish", "mobilenetv3"), (40, 1, 5, "silu", "efficientnet"),
        (100, 2, 7, "silu", "efficientnet"), (8, 1, 3, "relu6", "standard"), (112, 2, 5, "hardswish", None),
    ):  # fmt: skip
        specs.append(
            BlockSpec(
                "inverted_residual", c, stride=stride, kernel=kernel, activation=act, se_style=style, spatial=spatial
            )
        )
    specs += [
        BlockSpec("inverted_residual", 24, out_channels=40, stride=2, expansion=88 / 24, kernel=5, activation="hardswish",
                    se_style="mobilenetv3", spatial=spatial + 1),  # MobileNetV3-Small's t = 88/24, at an odd size
        BlockSpec("inverted_residual", 16, expansion=1, se_style="mobilenetv3", spatial=spatial),  # no expansion conv
        BlockSpec("fused_mbconv", 24, spatial=spatial),
        BlockSpec("fused_mbconv", 24, expansion=1, kernel=5, spatial=spatial),  # t = 1: one k×k conv
        BlockSpec("fused_mbconv", 48, out_channels=64, stride=2, kernel=3, activation="relu", spatial=spatial + 1),
        BlockSpec("regnet_x", 32, out_channels=64, stride=2, width_per_group=16, spatial=spatial),
        BlockSpec("regnet_x", 48, width_per_group=24, spatial=spatial),
        BlockSpec("regnet_y", 48, out_channels=104, stride=2, width_per_group=8, spatial=spatial + 1),
        BlockSpec("regnet_y", 232, width_per_group=232, spatial=spatial),  # RegNetY-32GF: one group per block
        BlockSpec("regnet_y", 8, width_per_group=16, spatial=spatial, batch=2),  # group width capped at the width, 8
    ]  # fmt: skip
    return specs


GRID = variant_grid()


def spec_id(spec: BlockSpec) -> str:
    return spec.label.replace(" ", "_")


@pytest.fixture(params=GRID, ids=spec_id)
def grid_spec(request: pytest.FixtureRequest) -> BlockSpec:
    return request.param


# --- sweeps (tests/test_sweep.py, test_plots.py) ---

#: a timed sweep small enough for CI: 3 blocks × 2 widths, 2 groups of 3 interleaved cells
TIMED = dict(min_run_time=0.01, rounds=1, min_runs=4, threads=1)


@pytest.fixture(scope="session")
def timed_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real timed sweep, its device peaks calibrated into the session's private cache."""
    from blockprof.grid import Grid
    from blockprof.sweep import sweep

    run = tmp_path_factory.mktemp("timed") / "run"
    sweep(Grid(channels=(8, 16), spatial=(8,), batch=(2,), device=("cpu",)), run, time=True, **TIMED)
    return run


# --- reports ---

EXAMPLE_RUN = "reports/example-run"
#: strings that would run script if a report wrote them unescaped; each sets window.__pwned
HOSTILE = {
    "block": "<script>window.__pwned='block'</script>basic",
    "user_block": "evil.mod:<img src=x onerror=\"window.__pwned='user block'\">",
    "error": "ImportError: </script><script>window.__pwned='error'</script>",
    "title": "Review <script>window.__pwned='title'</script>",
    "note": "<script>window.__pwned='note'</script>",
    "cpu": "</script><script>window.__pwned='environment'</script>",
}


@pytest.fixture(scope="session")
def hostile_report_input():  # type: ignore[no-untyped-def]
    """(records, meta) of the example run plus a block whose name is a script, a failed
    user block whose path and error are markup, and an environment that tries the same."""
    import pandas as pd

    from blockprof.runs import Run

    run = Run.open(EXAMPLE_RUN)
    df = run.frame()
    evil = df.iloc[[0]].copy()
    evil["block"] = HOSTILE["block"]
    failed = df.iloc[[1]].copy()
    for column in failed.columns:
        if column not in (
            "cell",
            "index",
            "in_channels",
            "out_channels",
            "stride",
            "spatial",
            "batch",
            "dtype",
            "device",
        ):
            failed[column] = None
    failed["block"], failed["status"], failed["error"] = HOSTILE["user_block"], "error", HOSTILE["error"]
    records = pd.concat([df, evil, failed], ignore_index=True)
    meta = {k: v for k, v in run.meta.items() if k != "environment"}
    meta["environment"] = {**run.meta["environment"], "cpu_model": HOSTILE["cpu"]}
    return records, meta


#: fixtures that time blocks: a test that uses one is a timing test, whatever it asserts
TIMING_FIXTURES = {"timed_run", "small_timings"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TIMING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timing)
