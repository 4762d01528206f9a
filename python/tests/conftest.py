"""Test set-up: every kiln the tests run uses a cache, tuning database and
settings of its own, so results do not depend on (or change) the user's."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_home = Path(tempfile.mkdtemp(prefix="kiln-pytest-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
(_home / "kiln.conf").write_text("# empty: the tests run with kiln's defaults\n")
os.environ["KILN_CACHE_DIR"] = str(_home / "cache")
os.environ["KILN_TUNING_DIR"] = str(_home / "tuning")
os.environ["KILN_CONFIG"] = str(_home / "kiln.conf")
os.environ.pop("KILN_EXECUTOR", None)
