"""docs/format.md: every rule names the tests that pin it, and every test it names exists.

The page is read as blocks: headings, fenced code, tables, list items (``*``,
``-`` or ``1.``, with their indented continuation) and paragraphs.  A
*reference* is a bracketed group outside code spans, not a link, whose text
starts with a backticked test name: ``test_...`` (a test function defined in
tests/) or ``tests/....py`` (a test file); any other text inside the brackets
is commentary.  The criterion, which the page states too:

1. every list item carries a reference;
2. every paragraph carries a reference, except the page's introduction (before
   its first section), a paragraph ending with ``:`` that is directly followed by
   a list (its items carry the references) and a paragraph beginning
   ``Not covered:`` (it says what is not a rule);
3. every table is directly preceded or followed by a paragraph that carries a
   reference (those tests pin the table);
4. fenced code quotes the schema and carries none (tests/test_schema.py pins
   every slot).

Every test name inside a reference must exist, and a bracketed group that
mentions a test without being a well-formed reference is an error too.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "format.md"
TESTS = ROOT / "tests"


@dataclass
class Block:
    kind: str  # heading, code, table, item, para
    line: int  # 1-based, where it starts
    text: str


def blocks(text: str) -> "list[Block]":
    out: list[Block] = []
    cur: "Block | None" = None
    fence = False
    blank = True  # the previous line was blank

    def close():
        nonlocal cur
        if cur is not None:
            out.append(cur)
        cur = None

    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            if not fence:
                close()
                out.append(Block("code", n, ""))
            fence = not fence
            blank = False
            continue
        if fence:
            continue
        if not line.strip():
            blank = True
            continue
        if line.startswith("#"):
            close()
            out.append(Block("heading", n, line))
        elif line.startswith("|"):
            if cur is None or cur.kind != "table":
                close()
                cur = Block("table", n, "")
            cur.text += line + "\n"
        elif re.match(r"(\*|-|\d+\.) ", line):
            close()
            cur = Block("item", n, line + "\n")
        elif cur is not None and cur.kind in ("item", "para") and \
                (not blank or (cur.kind == "item" and line.startswith(" "))):
            cur.text += line + "\n"  # continuation, or an indented paragraph of the item
        else:
            close()
            cur = Block("para", n, line + "\n")
        blank = False
    close()
    return out


def bracket_groups(text: str) -> "list[str]":
    """The text of every ``[...]`` outside code spans that is not a link's label."""
    groups, code, depth, start = [], False, 0, 0
    for i, ch in enumerate(text):
        if ch == "`":
            code = not code
        elif code:
            continue
        elif ch == "[":
            if depth == 0:
                start = i + 1
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
            if depth == 0 and not text.startswith("(", i + 1):
                groups.append(text[start:i])
    return groups


_NAME = re.compile(r"`((?:test_|tests/)[^`]*)`")


def references(text: str) -> "tuple[list[str], list[str]]":
    """``(names referenced, malformed groups)`` of a block."""
    names, bad = [], []
    for g in bracket_groups(text):
        if re.match(r"\s*`(test_|tests/)", g):
            names += _NAME.findall(g)
        elif "test_" in g or "tests/" in g:
            bad.append(g)
    return names, bad


def known_tests(folder: Path) -> "tuple[set[str], set[str]]":
    """``(test function names, test file paths)`` of ``folder``, read with ast."""
    functions, files = set(), set()
    for p in sorted(folder.glob("*.py")):
        files.add(f"tests/{p.name}")
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.name.startswith("test_"):
                functions.add(node.name)
    return functions, files


def problems(text: str, functions: "set[str]", files: "set[str]") -> "list[str]":
    """Every breach of the criterion, as ``line N: what``."""
    out = []
    bs = blocks(text)
    first_section = next((i for i, b in enumerate(bs)
                          if b.kind == "heading" and b.text.startswith("## ")), len(bs))
    cited = []
    for i, b in enumerate(bs):
        names, bad = references(b.text)
        cited += [(b.line, n) for n in names]
        out += [f"line {b.line}: a bracketed group mentions a test but does not start with "
                f"one: [{g}]" for g in bad]
        after = bs[i + 1] if i + 1 < len(bs) else None
        before = bs[i - 1] if i else None
        if b.kind == "item" and not names:
            out.append(f"line {b.line}: list item without a reference: {b.text[:60]!r}")
        elif b.kind == "para" and not names:
            exempt = (i < first_section
                      or (b.text.rstrip().endswith(":") and after is not None
                          and after.kind == "item")
                      or b.text.startswith("Not covered:"))
            if not exempt:
                out.append(f"line {b.line}: paragraph without a reference: {b.text[:60]!r}")
        elif b.kind == "table":
            if not any(x is not None and x.kind == "para" and references(x.text)[0]
                       for x in (before, after)):
                out.append(f"line {b.line}: table without a referenced paragraph beside it")
    for line, n in cited:
        known = n in files if n.startswith("tests/") else n in functions
        if not known:
            out.append(f"line {line}: {n} is not a test of tests/")
    return out


# -- the page --------------------------------------------------------------------------------


def test_every_rule_of_the_format_page_names_a_test_that_exists():
    functions, files = known_tests(TESTS)
    assert problems(PAGE.read_text(), functions, files) == []


def test_the_page_states_the_criterion():
    intro = PAGE.read_text().split("\n## ", 1)[0]
    assert "tests/test_format_page.py" in intro


# -- the checker itself --------------------------------------------------------------------------

FUNCTIONS = {"test_a", "test_b"}
FILES = {"tests/test_x.py"}


def _check(text: str) -> "list[str]":
    return problems(text, FUNCTIONS, FILES)


def test_a_list_item_needs_its_own_reference():
    page = "# T\n\nIntro.\n\n## S\n\n- one [`test_a`]\n- two\n  more\n"
    (p,) = _check(page)
    assert p.startswith("line 8: list item without a reference")


def test_a_paragraph_needs_a_reference_unless_it_introduces_a_list():
    page = ("# T\n\nIntro without one.\n\n## S\n\nThe rules:\n\n1. a [`test_a`]\n"
            "2. b [`test_b`,\n   `tests/test_x.py`]\n\nA rule.\n\nNot covered: this.\n")
    assert _check(page) == ["line 13: paragraph without a reference: 'A rule.\\n'"]
    assert _check(page.replace("A rule.", "A rule [`test_b`].")) == []
    # followed by a table, not a list: the colon does not exempt it
    table = "# T\n\n## S\n\nThe roles:\n\n| a | b |\n| - | - |\n"
    assert [p.split(":")[1].strip() for p in _check(table)] == [
        "paragraph without a reference", "table without a referenced paragraph beside it"]


def test_names_must_exist_and_groups_must_be_well_formed():
    page = ("# T\n\n## S\n\n- a [`test_a`, `test_gone`, on `data/x.bin`]\n"
            "- b [`tests/test_y.py`]\n- c [see test_a]\n")
    assert _check(page) == [
        "line 7: a bracketed group mentions a test but does not start with one: [see test_a]",
        "line 7: list item without a reference: '- c [see test_a]\\n'",
        "line 5: test_gone is not a test of tests/",
        "line 6: tests/test_y.py is not a test of tests/"]


def test_code_spans_links_and_fences_are_not_references():
    page = ("# T\n\n## S\n\n- `shape [2, 3]` and [a link](x.md) [`test_a`]\n\n```\n"
            "- not an item [`test_gone`]\n```\n\n- `see [test_gone]` in code, then "
            "[`test_b`]\n")
    assert _check(page) == []
    assert references("[`test_a`](x.md) [`test_b`]")[0] == ["test_b"]


def test_the_checker_finds_the_tests_of_this_folder():
    functions, files = known_tests(TESTS)
    assert "test_the_checker_finds_the_tests_of_this_folder" in functions
    assert "tests/test_format_page.py" in files
    assert "test_wrong_schema_version_is_refused" in functions


@pytest.mark.parametrize("broken", [
    ("[`test_wrong_schema_version_is_refused`]", "[`test_wrong_schema_version_is_gone`]"),
    ("[`test_model_subgraph_tensor_contract`]", ""),
])
def test_breaking_the_real_page_is_noticed(broken):
    functions, files = known_tests(TESTS)
    text = PAGE.read_text()
    old, new = broken
    assert old in text
    assert problems(text.replace(old, new, 1), functions, files) != []
