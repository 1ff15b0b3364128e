"""The exact environment of the running process: requirements lock, Python and platform."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
from importlib import metadata


@functools.lru_cache(maxsize=1)
def requirements_lock() -> str:
    """``pip freeze`` of the running interpreter (cached: a process's packages do not change).

    Falls back to the installed distributions' ``name==version`` when pip is not available
    (e.g. a slim image), saying so in the first line.
    """
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all",
                               "--disable-pip-version-check"],
                              capture_output=True, text=True, timeout=120, check=True)
        return f"# pip freeze of {sys.executable}\n{done.stdout}"
    except (OSError, subprocess.SubprocessError):
        pins = sorted({f"{dist.metadata['Name']}=={dist.version}"
                       for dist in metadata.distributions() if dist.metadata["Name"]},
                      key=str.lower)
        return ("# pip unavailable: installed distributions from importlib.metadata\n"
                + "\n".join(pins) + "\n")


def runtime_description() -> dict:
    """Python version and implementation, platform, machine and libc of this process."""
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "libc": "-".join(platform.libc_ver()),
    }


def environment_files() -> dict[str, bytes]:
    """The environment files by name: requirements.lock, .python-version, platform.json."""
    runtime = runtime_description()
    return {
        "requirements.lock": requirements_lock().encode(),
        ".python-version": (runtime["python_version"] + "\n").encode(),
        "platform.json": (json.dumps(runtime, indent=2, sort_keys=True) + "\n").encode(),
    }
