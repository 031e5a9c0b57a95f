"""The A/B check: the base and the change measured in the same job, round by round, so no timing crosses machines.

asv's ``continuous`` idea: build the base commit beside the working tree and time both on the same machine in
the same stretch of its load. Each side runs in its own worker process that imports its own tree
(``python -m blockprof.regress.worker`` with that tree first on ``sys.path``); the parent asks them for one
round at a time, alternating which goes first, so slow drift in the machine's load falls on both alike.
Counts come from each side's own tree and are compared exactly. A model cell is imported by each side from
its own tree (the worker runs there). A cell the base cannot build or count (a block this change registers, a
user block file or model it adds, a model cell an older tree does not know) is reported ``new``, as a cell
missing from a stored baseline is; the other cells are judged as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from blockprof.errors import BlockprofError
from blockprof.regress.baseline import Rounds, Snapshot
from blockprof.regress.judge import CheckResult, judge_snapshots, settle, suspects
from blockprof.regress.suite import TIME_METRIC, Suite

Progress = Callable[[int, int], None]
#: seconds a worker may take to build its cells (imports, counts, warm-up) and to answer one round
_START_TIMEOUT = 600


def head_tree() -> Path:
    """The tree this blockprof was imported from (the change under test)."""
    import blockprof

    return Path(blockprof.__file__).resolve().parent.parent


@contextlib.contextmanager
def base_tree(ref: str, repo: Path | None = None) -> Iterator[Path]:
    """``ref`` checked out (detached) into a temporary git worktree, removed afterwards."""
    repo = repo or head_tree()
    git = ["git", "-C", str(repo)]
    try:
        top = subprocess.run(
            [*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        subprocess.run(
            [*git, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], capture_output=True, check=True, timeout=30
        )
    except FileNotFoundError:
        raise BlockprofError(
            "--against needs git, which is not installed; give a second checkout with --against-path"
        ) from None
    except subprocess.CalledProcessError:
        raise BlockprofError(
            f"--against {ref}: not a commit of the git repository at {repo} (is it fetched? "
            "on CI check out with fetch-depth: 0 or fetch the base)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="blockprof-base-") as tmp:
        where = Path(tmp) / "base"
        done = subprocess.run(
            ["git", "-C", top, "worktree", "add", "--detach", str(where), ref],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode:
            raise BlockprofError(f"--against {ref}: git worktree add failed: {done.stderr.strip().splitlines()[-1]}")
        try:
            yield where
        finally:
            subprocess.run(
                ["git", "-C", top, "worktree", "remove", "--force", str(where)], capture_output=True, timeout=120
            )


class SideError(BlockprofError):
    """A side of the A/B check could not go on; ``reason`` is that side's own words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class BasePredatesAB(BlockprofError):
    """The base tree's blockprof has no A/B worker: it is older than ``check --against`` (the first runs of a CI
    check after the feature lands). ``check --fallback-baseline`` then judges against a stored baseline."""

    def __init__(self, base: str | Path) -> None:
        super().__init__(self.words(base))

    @staticmethod
    def words(base: str | Path) -> str:
        return f"the base ({base}) predates A/B checks: its blockprof has no A/B worker (blockprof.regress.worker)"


class Worker:
    """One side of the A/B check: a process that imported ``tree``'s blockprof and built the suite's cells."""

    def __init__(self, tree: Path, suite: Suite, name: str) -> None:
        self.tree, self.name, self.suite = tree, name, suite
        if not (tree / "blockprof" / "__init__.py").is_file():
            raise BlockprofError(f"{name} tree {tree} holds no blockprof package; give a checkout of this repository")
        if not (tree / "blockprof" / "regress" / "worker.py").is_file():
            raise BasePredatesAB(tree)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), *_inherited_path(tree)])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "blockprof.regress.worker"],
            cwd=tree,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.hello = self._ask({"suite": suite.as_dict()})
        # the two trees may name a cell differently (ids are built by each tree's own code): map by position;
        # an older tree that knows no model cells names only the blocks, which come first
        theirs = self.hello.get("ids", suite.ids)
        if len(theirs) > len(suite.ids):
            raise BlockprofError(f"the {name} side ({tree}) named {len(theirs)} cells for a suite of {len(suite.ids)}")
        self.ours = {**dict(zip(theirs, suite.ids, strict=False)), "reference": "reference"}
        self.theirs = {mine: other for other, mine in self.ours.items()}

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
            line = stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            tail = self._stderr_tail()
            raise SideError(f"the {self.name} side ({self.tree}) stopped: {tail}", tail)
        reply = json.loads(line)
        if "error" in reply:
            raise SideError(f"the {self.name} side ({self.tree}): {reply['error']}", reply["error"])
        return reply

    def _stderr_tail(self) -> str:
        self.process.kill()
        _, err = self.process.communicate(timeout=30)
        lines = [s for s in (err or "").strip().splitlines() if s.strip()]
        if any("No module named blockprof.regress.worker" in s for s in lines):
            return "its blockprof has no A/B worker (it predates 'check --against'); compare against a stored baseline"
        return lines[-1] if lines else f"exit code {self.process.returncode}"

    def round(self, number: int, only: list[str] | None = None) -> dict[str, Any]:
        asked = None if only is None else [self.theirs[i] for i in only]
        times = self._ask({"round": number, "only": asked})["times"]
        return {self.ours.get(label, label): t for label, t in times.items()}

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            stdin: IO[str] | None = self.process.stdin
            if stdin is not None:
                stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _inherited_path(tree: Path) -> list[str]:
    """This process's PYTHONPATH for a side's worker, less the change's own tree when the side is another tree:
    the base must not import a user block file the change adds (nor, behind its own, the change's blockprof)."""
    head = head_tree()
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return entries if tree.resolve() == head else [p for p in entries if Path(p).resolve() != head]


def _measure_pair(
    base: Worker, head: Worker, rounds: int, only: list[str] | None, progress: Progress | None, done: int, total: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``rounds`` rounds, the two sides alternating which goes first: per side, label → rounds or error."""
    times: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    for r in range(rounds):
        order = ((0, base), (1, head)) if r % 2 == 0 else ((1, head), (0, base))
        for side, worker in order:
            for label, result in worker.round(r, only).items():
                before = times[side].get(label, ())
                if isinstance(result, str) or isinstance(before, str):
                    times[side][label] = before if isinstance(before, str) else result
                else:
                    times[side][label] = (*before, tuple(result))
            done += 1
            if progress:
                progress(done, total)
    return times


def start_base(tree: Path, suite: Suite) -> tuple[Worker, dict[str, str]]:
    """The base side's worker, and the cells the base cannot build (id → its reason): a block this change
    registers, a user block file it adds. When the base refuses the suite, each cell is tried alone (counts
    only, a quick start) and the ones it refuses are left out of its side; if it refuses every cell, or none
    alone, its own error stands."""
    try:
        return Worker(tree, suite, "base"), {}
    except SideError as whole:
        lacking: dict[str, str] = {}
        for spec, cell in zip(suite.cells, suite.ids, strict=True):
            try:
                Worker(tree, replace(suite, cells=(spec,), metrics=("params",)), "base").close()
            except SideError as e:
                lacking[cell] = e.reason
        if not lacking or len(lacking) == len(suite.cells):
            raise whole from None
    kept = tuple(s for s, i in zip(suite.cells, suite.ids, strict=True) if i not in lacking)
    return Worker(tree, replace(suite, cells=kept), "base"), lacking


def _new_in_this_tree(result: CheckResult, lacking: dict[str, str]) -> CheckResult:
    """``new`` verdicts that say why: the base cannot build the cell, so nothing of it is compared."""
    verdicts = tuple(
        replace(v, note=f"the base cannot build it ({lacking[v.cell]}): new in this tree, not compared")
        if v.cell in lacking and v.status == "new"
        else v
        for v in result.verdicts
    )
    return replace(result, verdicts=verdicts)


def _snapshot(suite: Suite, worker: Worker, times: dict[str, Any]) -> Snapshot:
    from blockprof.regress.measure import snapshot_of

    hello = worker.hello
    reference: Rounds | None = times.get("reference") if suite.timed else None
    if isinstance(reference, str):
        raise BlockprofError(f"the {worker.name} side's reference kernel failed to run: {reference}")
    rounds = {k: v for k, v in times.items() if k != "reference"}
    for key, message in hello.get("errors", {}).items():
        rounds[worker.ours.get(key, key)] = message
    counts = {worker.ours.get(key, key): c for key, c in hello["counts"].items()}
    uncounted = [i for i in suite.ids if not counts.get(i)]
    if uncounted and worker.name != "base":  # this tree's own cell: bad input, as in a check against a baseline
        raise BlockprofError(f"cell {uncounted[0]}: {rounds.get(uncounted[0], 'not counted')}")
    counts.update({key: {} for key in uncounted})
    snapshot = snapshot_of(suite, counts, rounds, reference, hello["environment"], git=hello.get("git"))
    if worker.name == "base":  # a cell the base cannot count is new to the change, as it would be in a baseline
        snapshot = replace(snapshot, cells={k: c for k, c in snapshot.cells.items() if k not in uncounted})
    return replace(snapshot, blockprof_version=hello.get("version", "?"))


def ab_check(suite: Suite, base: Path, head: Path | None = None, *, progress: Progress | None = None) -> CheckResult:
    """Measure ``base`` and ``head`` (default: this tree) side by side, interleaved round by round, and judge head
    against base (counts exactly; times by the suite's rules, with a confirming re-measurement of slower cells)."""
    head = head or head_tree()
    if base.resolve() == head.resolve():
        raise BlockprofError(f"the base and the change are the same tree ({head}); give another commit or checkout")
    if suite.timed and suite.timing.clock == "instructions":
        raise BlockprofError(
            "the A/B check times with the thread or wall clock; use 'check --baseline' with clock 'instructions'"
        )
    workers: list[Worker] = []
    try:
        try:
            old, lacking = start_base(base, suite)
        except BlockprofError as e:
            if len(suite.models) < len(suite.cells) or "at least one cell" not in str(e):
                raise
            raise BlockprofError(
                f"the base side ({base}) predates model cells, so a suite of models alone has nothing to compare "
                "there; add a block cell to the suite, or compare against a base that has model cells"
            ) from None
        workers.append(old)
        workers.append(new := Worker(head, suite, "change"))
        rounds = suite.timing.rounds if suite.timed else 0
        first = _measure_pair(old, new, rounds, None, progress, 0, 2 * rounds)
        result = judge_snapshots(_snapshot(old.suite, old, first[0]), _snapshot(suite, new, first[1]), mode="ab")
        again = suspects(result) if suite.rules.confirm else []
        if again:
            second = _measure_pair(old, new, rounds, again, progress, 0, 2 * rounds)
            sub = replace(
                suite, metrics=(TIME_METRIC,), cells=tuple(s for s in suite.cells if s in _specs(suite, again))
            )
            result = settle(
                result, judge_snapshots(_snapshot(sub, old, second[0]), _snapshot(sub, new, second[1]), mode="ab")
            )
        return _new_in_this_tree(result, lacking)
    finally:
        for w in workers:
            w.close()


def _specs(suite: Suite, ids: list[str]) -> list[Any]:
    return [s for s, i in zip(suite.cells, suite.ids, strict=True) if i in ids]
