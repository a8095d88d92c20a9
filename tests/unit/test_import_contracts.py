"""The domain core imports no framework: checked by import-linter's contracts in pyproject."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ldis.settings import PROJECT_ROOT


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports)], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_domain_really_imports_no_framework_at_runtime() -> None:
    code = (
        "import sys, ldis.domain.alerts, ldis.domain.reports, ldis.domain.audience, "
        "ldis.domain.deliveries, ldis.domain.recipients, ldis.domain.principal;"
        "bad = [m for m in ('flask', 'sqlalchemy', 'celery', 'twilio', 'kombu') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
