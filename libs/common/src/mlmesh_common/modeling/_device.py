"""Detecting whether a CUDA GPU is usable on this machine."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
from typing import Literal

Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = ("cpu", "cuda")
DEVICE_ENV = "MLMESH_DEVICE"

_log = logging.getLogger(__name__)


def _nvidia_smi_lists_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(line.startswith("GPU ") for line in out.stdout.splitlines())


def _libcuda_device_count() -> int:
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return 0
            count = ctypes.c_int(0)
            if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
            return int(count.value)
        except (AttributeError, OSError):
            return 0
    return 0


def detect_device() -> Device:
    """Return ``"cuda"`` when a CUDA GPU is usable here, else ``"cpu"``; never raises.

    ``MLMESH_DEVICE=cpu|cuda`` overrides the detection. Otherwise a GPU counts as present
    when ``nvidia-smi -L`` lists one or the CUDA driver library loads and reports a device.
    """
    forced = os.environ.get(DEVICE_ENV, "").strip().lower()
    if forced in DEVICES:
        return "cuda" if forced == "cuda" else "cpu"
    if forced:
        _log.warning(
            "ignoring %s=%r (use cpu or cuda); detecting the device instead", DEVICE_ENV, forced
        )
    try:
        if _nvidia_smi_lists_gpu() or _libcuda_device_count() > 0:
            return "cuda"
    except Exception:  # noqa: BLE001 - detection must never stop training
        _log.warning("GPU detection failed; using cpu", exc_info=True)
    return "cpu"
