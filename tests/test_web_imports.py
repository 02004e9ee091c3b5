"""The web process must never load TensorFlow: only workers do."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from app.web.main import create_app
from app import cli
app = create_app()
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras', 'worker'})
print(heavy)
"""


def test_web_app_and_cli_import_no_tensorflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
