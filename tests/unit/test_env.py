"""Importing lorag silences only the dependency warnings it knows a user can do nothing about."""

import subprocess
import sys

CODE = """
import lorag, warnings
warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
warnings.warn("a warning lorag knows nothing about", FutureWarning)
"""


def test_known_dependency_deprecation_is_quiet_and_others_still_show():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert "is_gradient_checkpointing" not in proc.stderr
    assert "a warning lorag knows nothing about" in proc.stderr
