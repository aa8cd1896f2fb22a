"""Every code example in the documentation runs and prints what the page says.

The pages under ``docs/`` write their examples as interactive sessions (``>>>``
prompts with the expected output), so :mod:`doctest` executes them and
compares the printed results; the docstring examples of the package (rendered
in the API reference) are executed the same way.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import bayesclv

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
PYTHON = ("python", "py", "pycon")
MODULES = sorted(m.name for m in pkgutil.walk_packages(bayesclv.__path__, "bayesclv."))


def test_docs_have_pages():
    assert {"index.md", "getting-started.md", "models.md", "api.md"} <= {p.name for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_python_blocks_are_executed_sessions(page):
    """A Python block without ``>>>`` prompts would never run: every one must be a session."""
    for lang, body in FENCE.findall(page.read_text()):
        if lang in PYTHON:
            assert body.lstrip().startswith(">>>"), f"{page.name}: a python block is not a >>> session:\n{body}"


def session_text(markdown: str) -> str:
    """The page with everything but its Python blocks blanked out (line numbers kept)."""
    keep = [False] * len(markdown.splitlines())
    for match in FENCE.finditer(markdown):
        if match.group(1) in PYTHON:
            first = markdown.count("\n", 0, match.start(2))
            keep[first:first + match.group(2).count("\n")] = [True] * match.group(2).count("\n")
    return "\n".join(line if k else "" for line, k in zip(markdown.splitlines(), keep, strict=True))


def test_session_text_keeps_only_python_blocks():
    page = "intro\n```pycon\n>>> 1 + 1\n2\n```\n```bash\n>>> not python\n```\n"
    assert session_text(page).split("\n") == ["", "", ">>> 1 + 1", "2", "", "", "", ""]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples(page, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    test = doctest.DocTestParser().get_doctest(session_text(page.read_text()), {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {page.name} failed (see stdout)"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed (see stdout)"
