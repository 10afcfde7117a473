"""The documentation stays true: docs/rules.md matches the registry, and the guide's examples run.

Convention for docs/guide.md: every ```python block is preceded (on the line
just before its opening fence, indentation allowed) by one of

    <!-- run -->        the block is a self-contained script; this test runs it
    <!-- no-run -->     the block is shown but not run (say why in the text)

A runnable block is written to its own .py file (morula reads source, so it
cannot be run with ``exec`` of a string) and run in a fresh interpreter with
``src/`` on ``PYTHONPATH``; it passes when it exits with status 0. Use
``assert`` in the examples so that they check what the text claims.
"""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide.md"
RULES_DOC = ROOT / "docs" / "rules.md"

RUN_MARK = "<!-- run -->"
NO_RUN_MARK = "<!-- no-run -->"
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")


def load_rules_table():
    spec = importlib.util.spec_from_file_location("morula_rules_table", ROOT / "scripts" / "rules_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(rules_table):
    try:
        return rules_table.render()
    except rules_table.MissingLibraryError as error:   # an optional library is not installed
        pytest.skip(str(error))


# --------------------------------------------------------------------------- docs/rules.md

def test_rules_table_is_up_to_date():
    rules_table = load_rules_table()
    expected = render(rules_table)
    current = RULES_DOC.read_text(encoding="utf-8") if RULES_DOC.exists() else ""
    assert current == expected, (
        "docs/rules.md is stale (the rule registry or the tests changed): "
        "run `python scripts/rules_table.py` and commit the result")


def test_rules_table_check_mode_detects_a_stale_file(tmp_path, monkeypatch, capsys):
    rules_table = load_rules_table()
    text = render(rules_table)
    assert rules_table.main(["--check"]) == 0
    stale = tmp_path / "rules.md"
    stale.write_text(text.replace("| rule |", "| nondiff |", 1), encoding="utf-8")
    assert not rules_table.check(stale)
    monkeypatch.setattr(rules_table, "DOC", stale)
    monkeypatch.setattr(rules_table, "ROOT", tmp_path)
    assert rules_table.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_rules_table_lists_core_rules():
    text = render(load_rules_table())
    for row in ("| `np.sin` | rule | ✓ | ✓ |", "| `np.absolute` (`np.abs`) | rule | ✓ | ✓ |",
                "| `ndarray.sum` | rule | ✓ | ✓ |", "| `ndarray.T` | rule | ✓ | ✓ |", "| `math.exp` | rule | ✓ | ✓ |",
                "| `operator.add` | rule | ✓ | ✓ |", "| `np.argmax` | nondiff | ✓ | zero |",
                "| `np.linalg.norm` | rule | ✓ |", "| `np.linalg.solve` | rule | ✓ | ✓ |",
                "| `ndarray.sort` | refused | ✓ | refused |"):
        assert row in text, row


# --------------------------------------------------------------------------- docs/guide.md

def guide_blocks():
    """(line number, marker, code) for every ```python block of the guide."""
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, indent, lang = i, match.group("indent"), match.group("lang")
        j = i + 1
        while j < len(lines) and not (FENCE.match(lines[j]) and lines[j].strip() == "```"):
            j += 1
        if lang == "python":
            previous = lines[start - 1].strip() if start > 0 else ""
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                    for line in lines[start + 1:j]]
            blocks.append((start + 1, previous, textwrap.dedent("\n".join(body)) + "\n"))
        i = j + 1
    return blocks


RUNNABLE = [(line, code) for line, mark, code in guide_blocks() if mark == RUN_MARK]


def test_every_python_block_is_marked():
    unmarked = [line for line, mark, _ in guide_blocks() if mark not in (RUN_MARK, NO_RUN_MARK)]
    assert not unmarked, (f"```python blocks at docs/guide.md lines {unmarked} need {RUN_MARK} "
                          f"(run by this test) or {NO_RUN_MARK} on the line before the fence")
    assert len(RUNNABLE) >= 20


@pytest.mark.parametrize("line, code", RUNNABLE, ids=[f"guide.md:{line}" for line, _ in RUNNABLE])
def test_guide_example_runs(line, code, tmp_path):
    script = tmp_path / f"guide_example_line_{line}.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, (
        f"the example at docs/guide.md:{line} failed (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}")


def _anchors(markdown):
    """GitHub's anchors for the headings of a Markdown text."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("name", ["guide.md", "rules.md"])
def test_links_between_docs_resolve(name):
    docs = ROOT / "docs"
    text = (docs / name).read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        document = (docs / path) if path else (docs / name)
        if not document.exists():
            broken.append(target)
        elif anchor and document.suffix == ".md" and anchor not in _anchors(document.read_text(encoding="utf-8")):
            broken.append(target)
    assert not broken, f"docs/{name} links to missing files or headings: {broken}"


def test_every_numpy_and_scipy_rule_has_a_sweep():
    """A rule listed as covered must be swept against finite differences (docs/rules.md, "tested")."""
    pytest.importorskip("scipy")
    missing = load_rules_table().unswept_rules()
    assert not missing, f"rules without a parametrized finite-difference sweep in tests/rules: {missing}"
