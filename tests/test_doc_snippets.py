"""Every ```python block of README.md and docs/**/*.md runs as written.

Each block runs in a fresh namespace with a temporary directory as the working
directory (so a snippet that writes ``runs/widths`` writes there), with the
repository root importable (``examples.user_blocks``); a block written as a session
(``>>>`` prompts) runs as a doctest. A block preceded by a line ``<!-- no-test -->``
is skipped: for snippets that stand for the user's own code.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SKIP_MARK = "<!-- no-test -->"


def snippets(path: Path) -> list[tuple[str, str]]:
    """(id, code) of each python block of ``path`` not marked ``<!-- no-test -->``."""
    text = path.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before == SKIP_MARK:
            continue
        line = text.count("\n", 0, match.start()) + 1
        out.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return out


def documents() -> list[Path]:
    """README.md and the site's pages (docs/drafts/ holds branch notes the site excludes too, see mkdocs.yml)."""
    pages = sorted(p for p in (ROOT / "docs").glob("**/*.md") if "drafts" not in p.relative_to(ROOT / "docs").parts)
    return [p for p in (ROOT / "README.md", *pages) if p.is_file()]


SNIPPETS = [s for doc in documents() for s in snippets(doc)]


def test_the_extractor_skips_marked_blocks(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text(
        "```python\na = 1\n```\n<!-- no-test -->\n```python\nraise SystemExit\n```\n```bash\nls\n```\n",
        encoding="utf-8",
    )
    global ROOT
    root, ROOT = ROOT, tmp_path
    try:
        assert snippets(doc) == [("d.md:1", "a = 1\n")]
    finally:
        ROOT = root


@pytest.mark.parametrize("code", [code for _, code in SNIPPETS], ids=[name for name, _ in SNIPPETS])
def test_snippet_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    if any(line.startswith(">>> ") for line in code.splitlines()):  # a session: run it as a doctest, outputs checked
        test = doctest.DocTestParser().get_doctest(code, {"__name__": "__snippet__"}, "snippet", None, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"{runner.failures} example(s) of the snippet failed (see the output above)"
        return
    exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})
