"""verl platform for plain CPUs: device ``cpu``, collective backend ``gloo``, logical Ray ``GPU`` resource.

verl 0.9.1 routes every device call through ``verl.plugin.platform.get_platform()`` and ships CUDA, NPU and
ROCm platforms only; without an accelerator it falls back to CUDA (``plugin/platform/platform_manager.py:
113-117``) and then asks for NCCL. :class:`CpuPlatform` is registered as ``cpu`` by the plugin and selected
with ``VERL_PLATFORM=cpu``.

Choices, each forced by how verl uses the platform:

* ``current_device()`` returns the string ``"cpu"``: verl writes ``.to(get_device_id())`` and
  ``torch.device(get_device_id())`` in about 65 places (e.g. ``utils/fsdp_utils.py:507``), so an int index
  would send tensors to ``cuda:0``.
* ``ray_resource_name()`` is ``"GPU"``: verl's resource pools always request one accelerator per rank
  (``single_controller/ray/base.py:146-148``, ``use_gpu=True`` at :210) and count only ``GPU``/``NPU``
  when checking the cluster (:226-238). CPU mode therefore starts Ray with *logical* GPUs
  (``ray_kwargs.ray_init.num_gpus``); nothing ever touches CUDA.
* ``device_module`` is :class:`CpuDeviceModule`, a stand-in for ``torch.cuda``. It implements the calls verl
  makes through ``get_torch_device()`` explicitly, and raises ``AttributeError`` naming any call it does not
  know, instead of silently returning a dummy. Memory counters (``memory_allocated`` & co.) read 0: the CPU
  allocator keeps no such statistics (verl reports host memory separately as
  ``actor/perf/cpu_memory_used_gb``). ``get_device_name()`` is ``"CPU"``, the key of verl's FLOPS table
  (``utils/flops_counter.py:23``).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import psutil
import torch
from verl.plugin.platform import PlatformBase

__all__ = ["PLATFORM_NAME", "CpuDeviceModule", "CpuPlatform", "cpu_device_module"]

PLATFORM_NAME = "cpu"


class CpuDeviceModule(types.ModuleType):
    """A ``torch.cuda``-shaped namespace for the CPU: what verl calls through ``get_torch_device()``.

    Stream, event and device-selection calls come from ``torch.cpu``; memory and RNG calls are defined
    here. Any other attribute raises ``AttributeError`` with the name, so a verl code path that needs a
    real accelerator fails loudly instead of running on a dummy.
    """

    def __init__(self) -> None:
        super().__init__("cures_cpu_device", "CPU stand-in for torch.cuda used by verl's CPU platform")
        for name in (
            "Event",
            "Stream",
            "StreamContext",
            "current_device",
            "current_stream",
            "device_count",
            "is_available",
            "is_initialized",
            "set_device",
            "stream",
            "synchronize",
        ):
            setattr(self, name, getattr(torch.cpu, name))

    def __getattr__(self, name: str) -> Any:
        # Only called for names not set above nor defined on the class.
        raise AttributeError(
            f"verl called torch.<device>.{name}, which CPU mode does not implement; this verl code path needs a "
            f"real accelerator, or {name} must be added to CpuDeviceModule in {__name__}"
        )

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        """Device name for verl's FLOPS table (``utils/flops_counter.py``): always ``"CPU"``."""
        return "CPU"

    @staticmethod
    def get_device_properties(device: Any = None) -> types.SimpleNamespace:
        """Name and total host memory, shaped like ``torch.cuda.get_device_properties``."""
        return types.SimpleNamespace(name="CPU", total_memory=psutil.virtual_memory().total, major=0, minor=0)

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        """``(free, total)`` host memory in bytes, like ``torch.cuda.mem_get_info``."""
        memory = psutil.virtual_memory()
        return int(memory.available), int(memory.total)

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        """0: the CPU allocator keeps no per-device allocation counter."""
        return 0

    @staticmethod
    def memory_reserved(device: Any = None) -> int:
        """0: the CPU allocator keeps no reserved-memory counter."""
        return 0

    @staticmethod
    def max_memory_allocated(device: Any = None) -> int:
        """0: the CPU allocator keeps no peak counter."""
        return 0

    @staticmethod
    def max_memory_reserved(device: Any = None) -> int:
        """0: the CPU allocator keeps no peak counter."""
        return 0

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        """No-op: there are no peak statistics to reset on CPU."""

    @staticmethod
    def reset_accumulated_memory_stats(device: Any = None) -> None:
        """No-op: there are no accumulated statistics to reset on CPU."""

    @staticmethod
    def empty_cache() -> None:
        """No-op: the CPU allocator returns memory to the OS itself."""

    @staticmethod
    def ipc_collect() -> None:
        """No-op: CPU mode shares no tensors over CUDA IPC."""

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        """No-op: host memory is not partitioned per process."""

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        """The CPU generator's state (``torch.get_rng_state``)."""
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(new_state: torch.Tensor, device: Any = None) -> None:
        """Restore the CPU generator's state (``torch.set_rng_state``)."""
        torch.set_rng_state(new_state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        """Seed the CPU generator."""
        torch.manual_seed(seed)

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        """Seed the CPU generator (there is only one device)."""
        torch.manual_seed(seed)


_DEVICE_MODULE: CpuDeviceModule | None = None


def cpu_device_module() -> CpuDeviceModule:
    """The process-wide :class:`CpuDeviceModule` (created on first use)."""
    global _DEVICE_MODULE
    if _DEVICE_MODULE is None:
        _DEVICE_MODULE = CpuDeviceModule()
    return _DEVICE_MODULE


class CpuPlatform(PlatformBase):
    """verl platform backed by the host CPU; registered under ``cpu`` by the CPU-mode plugin."""

    @property
    def device_name(self) -> str:
        """``"cpu"``: also what ``trainer.device`` must be set to."""
        return PLATFORM_NAME

    @property
    def vendor_name(self) -> str:
        """``"cpu"``."""
        return PLATFORM_NAME

    @property
    def device_module(self) -> types.ModuleType:
        """The :class:`CpuDeviceModule` singleton."""
        return cpu_device_module()

    def is_available(self) -> bool:
        """Always ``True``: a CPU is always there."""
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        """Always ``True`` (only registered when CPU mode is on)."""
        return True

    def current_device(self) -> str:  # type: ignore[override]
        """``"cpu"``, a valid argument of ``.to()`` and ``torch.device()`` (see the module docstring)."""
        return PLATFORM_NAME

    def device_count(self) -> int:
        """1: the host is one device."""
        return 1

    def set_device(self, device_index: int) -> None:
        """No-op: every rank uses the same host CPU."""

    def synchronize(self, device_index: int | None = None) -> None:
        """No-op: CPU ops are synchronous."""

    def manual_seed(self, seed: int) -> None:
        """Seed the CPU generator."""
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        """Seed the CPU generator."""
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        """No-op: the settings (e.g. ``expandable_segments``) are CUDA-allocator options."""

    def empty_cache(self) -> None:
        """No-op, see :meth:`CpuDeviceModule.empty_cache`."""

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        """``(None, None)``: no compute capability."""
        return None, None

    def communication_backend_name(self) -> str:
        """``"gloo"``: the torch.distributed backend for CPU tensors."""
        return "gloo"

    def visible_devices_envvar(self) -> str:
        """``CUDA_VISIBLE_DEVICES``: the variable Ray sets for actors holding logical GPUs."""
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        """No profiler ranges on CPU."""
        yield

    def profiler_start(self) -> None:
        """No-op: no device profiler on CPU."""

    def profiler_stop(self) -> None:
        """No-op: no device profiler on CPU."""

    def ray_resource_name(self) -> str:
        """``"GPU"``: CPU mode starts Ray with logical GPUs, one per trainer rank (see the module docstring)."""
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        """``{"num_gpus": n}``, a share of the logical GPUs."""
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        """None: Ray may set ``CUDA_VISIBLE_DEVICES`` for logical GPUs; CPU torch ignores it."""
        return []

    def is_ipc_supported(self) -> bool:
        """``False``: no CUDA IPC; CPU mode moves weights through Ray's object store."""
        return False

    def cudart(self) -> None:
        """``None``: there is no CUDA runtime."""
        return None
