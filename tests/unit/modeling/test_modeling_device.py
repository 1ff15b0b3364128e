"""detect_device: env override, nvidia-smi, libcuda, CPU fallback, never raising."""

import shutil
import stat

import pytest

from mlmesh_common.modeling import _device, detect_device


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    """A PATH without nvidia-smi and a CUDA driver library that cannot be loaded."""
    monkeypatch.delenv("MLMESH_DEVICE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    def refuse(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(_device.ctypes, "CDLL", refuse)
    return tmp_path


def _fake_nvidia_smi(folder, output, code=0):
    exe = folder / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_this_machine_falls_back_to_cpu(monkeypatch):
    monkeypatch.delenv("MLMESH_DEVICE", raising=False)
    assert detect_device() == "cpu"


def test_cpu_without_gpu(no_gpu):
    assert detect_device() == "cpu"


def test_env_override(no_gpu, monkeypatch):
    monkeypatch.setenv("MLMESH_DEVICE", "cuda")
    assert detect_device() == "cuda"
    monkeypatch.setenv("MLMESH_DEVICE", " CPU ")
    assert detect_device() == "cpu"
    monkeypatch.setenv("MLMESH_DEVICE", "tpu")  # ignored, detection runs
    assert detect_device() == "cpu"


def test_nvidia_smi_listing_a_gpu(no_gpu):
    _fake_nvidia_smi(no_gpu, "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)")
    assert detect_device() == "cuda"


def test_nvidia_smi_failing_means_cpu(no_gpu):
    _fake_nvidia_smi(no_gpu, "NVIDIA-SMI has failed", code=9)
    assert detect_device() == "cpu"


class _FakeCuda:
    def __init__(self, count, init_code=0):
        self.count, self.init_code = count, init_code

    def cuInit(self, flags):  # noqa: N802 - CUDA driver API name
        return self.init_code

    def cuDeviceGetCount(self, ref):  # noqa: N802 - CUDA driver API name
        ref._obj.value = self.count
        return 0


def test_libcuda_reporting_a_device(no_gpu, monkeypatch):
    monkeypatch.setattr(_device.ctypes, "CDLL", lambda name: _FakeCuda(2))
    assert detect_device() == "cuda"
    monkeypatch.setattr(_device.ctypes, "CDLL", lambda name: _FakeCuda(0))
    assert detect_device() == "cpu"
    monkeypatch.setattr(_device.ctypes, "CDLL", lambda name: _FakeCuda(1, init_code=100))
    assert detect_device() == "cpu"


def test_never_raises(no_gpu, monkeypatch):
    def explode():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(_device, "_nvidia_smi_lists_gpu", explode)
    assert detect_device() == "cpu"
