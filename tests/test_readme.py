"""The README's API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_api_example_runs(capsys):
    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"## API\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    assert "pg_loss" in capsys.readouterr().out
