"""The README's examples run as written, and every relative link of the
documentation resolves, so the docs cannot drift from the code unnoticed."""
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(text: str) -> list:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_examples_run():
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- examples:begin -->", 1)[1].split("<!-- examples:end -->", 1)[0]
    blocks = python_blocks(section)
    assert len(blocks) >= 8
    namespace = {}
    exec(compile("\n".join(blocks), "README.md examples", "exec"), namespace)
    assert namespace["loss"].dim() == 0 and namespace["pred"].grad is not None


def test_readme_size_and_quickstart():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    quickstart = text.split("<!-- quickstart:begin -->", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    commands = [line for line in quickstart.splitlines() if line.startswith(("pip", "python"))]
    assert len(commands) == 2  # what .ci/run runs


def anchors(path: Path) -> set:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    seen, out = {}, set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = "".join(c for c in title if c in " -_" or unicodedata.category(c)[0] in "LN").replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert page.exists(), page
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"
