"""Build hook: compiles sandik's one C module (``src/sandik/core/_fastcheck.c``) with the system's C compiler.

Why a hook and not setuptools: the rest of the build stays plain hatchling; the
module is one file with no dependencies. The compiled file is written next to
its source, so that editable installs (``pip install -e .``, what ``make``
does) import it from the source tree; wheels carry it as an artifact. Without a
C compiler the build goes on and sandik uses the pure-Python reference
(``core.validation.clean_votes``): same results, slower bulk ingest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/sandik/core/_fastcheck.c")


def compile_module(root: Path) -> Path | None:
    src = root / SOURCE
    out = src.with_name("_fastcheck" + sysconfig.get_config_var("EXT_SUFFIX"))
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("sandik: no C compiler found; using the pure-Python ingest check", file=sys.stderr)
        return None
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    cmd = [cc, "-O2", "-shared", "-fPIC", "-Wall", f"-I{sysconfig.get_paths()['include']}", str(src), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"sandik: compiling {SOURCE} failed; using the pure-Python ingest check\n{done.stderr}", file=sys.stderr)
        return None
    return out


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        out = compile_module(Path(self.root))
        if out is not None and self.target_name == "wheel":
            build_data["artifacts"].append(str(out.relative_to(self.root)))
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
