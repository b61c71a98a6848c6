"""The cures_cpu plugin (inert / active / refusing) and the CPU platform.

Plugin tests run in fresh interpreters: verl loads the plugin at ``import verl`` and its platform is a
process-wide singleton, so activating CPU mode in the pytest process would leak into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from cures_verl.cpu.platform import CpuDeviceModule, CpuPlatform  # noqa: E402

CPU_ENV_KEYS = ("CURES_CPU_MODE", "VERL_PLATFORM", "VERL_ENGINE_DEVICE", "VERL_USE_EXTERNAL_PLUGINS", "RAY_ADDRESS")


def run_python(code: str, **env_overrides: str) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON object as its last line."""
    env = {k: v for k, v in os.environ.items() if k not in CPU_ENV_KEYS}
    env.update(env_overrides)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_plugin_is_inert_without_the_switch_and_can_be_activated_later():
    report = run_python(
        """
        import json, os, sys
        import verl
        from verl.plugin.platform import PlatformRegistry
        from verl.workers.rollout import base, replica
        import verl.utils.distributed as distributed
        plugin = sys.modules.get("cures_verl.cpu.plugin")
        inert = {
            "loaded_by_verl": plugin is not None,
            "active": plugin.STATE.active,
            "cpu_registered": "cpu" in PlatformRegistry.registered_names(),
            "hf_worker_registered": ("hf", "async") in base._ROLLOUT_REGISTRY,
            "hf_replica_registered": "hf" in replica.RolloutReplicaRegistry._registry,
            "patched": hasattr(distributed.initialize_global_process_group_ray, "__wrapped__"),
            "engine_env": os.environ.get("VERL_ENGINE_DEVICE"),
            # the plugin and its process state (stdlib only) are all an inert import may load
            "heavy_modules": sorted(m for m in sys.modules if m.startswith("cures_verl.cpu.")
                                    and m not in ("cures_verl.cpu.plugin",
                                                  "cures_verl.cpu.state")),
        }
        os.environ["CURES_CPU_MODE"] = "1"
        from cures_verl.cpu.launch import verify_plugin_active
        verify_plugin_active()
        from verl.utils.device import get_device_name
        late = {"active": plugin.STATE.active, "device": get_device_name()}
        print(json.dumps({"inert": inert, "late": late}))
        """
    )
    assert report["inert"] == {
        "loaded_by_verl": True,
        "active": False,
        "cpu_registered": False,
        "hf_worker_registered": False,
        "hf_replica_registered": False,
        "patched": False,
        "engine_env": None,
        "heavy_modules": [],
    }
    assert report["late"] == {"active": True, "device": "cpu"}


def test_plugin_activates_cpu_mode_on_import_verl():
    report = run_python(
        """
        import json, os, socket, sys
        import torch
        import verl
        from verl.plugin.platform import get_platform
        from verl.utils.device import get_device_id, get_device_name, get_nccl_backend, get_torch_device
        from verl.utils.flops_counter import get_device_flops
        from verl.workers.engine import EngineRegistry
        from verl.workers.rollout.base import get_rollout_class
        from verl.workers.rollout.replica import get_rollout_replica_class
        import verl.utils.distributed as distributed
        plugin = sys.modules["cures_verl.cpu.plugin"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1")
        distributed.initialize_global_process_group_ray(timeout_second=None)
        backend = torch.distributed.get_backend()
        torch.distributed.destroy_process_group()
        print(json.dumps({
            "active": plugin.STATE.active,
            "platform": type(get_platform()).__name__,
            "device": get_device_name(),
            "device_id": get_device_id(),
            "tensor_device": str(torch.zeros(1).to(get_device_id()).device),
            "backend_name": get_nccl_backend(),
            "device_module_name": get_torch_device().get_device_name(),
            "flops_T": get_device_flops(),
            "engine": EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__,
            "worker_rollout": get_rollout_class("hf").__name__,
            "replica": get_rollout_replica_class("hf").__name__,
            "process_group_backend": backend,
        }))
        """,
        CURES_CPU_MODE="1",
    )
    assert report == {
        "active": True,
        "platform": "CpuPlatform",
        "device": "cpu",
        "device_id": "cpu",
        "tensor_device": "cpu",
        "backend_name": "gloo",
        "device_module_name": "CPU",
        "flops_T": 0.448,
        "engine": "FSDPEngineWithLMHead",
        "worker_rollout": "HFServerAdapter",
        "replica": "HFReplica",
        "process_group_backend": "cpu:gloo",
    }


def test_plugin_refuses_gpu_machines_and_late_switch_after_platform_resolution():
    report = run_python(
        """
        import json, os, sys
        import torch
        real_is_available = torch.cuda.is_available
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 1
        import verl  # verl swallows the plugin's exception
        from cures_verl.cpu.launch import verify_plugin_active
        loaded = "cures_verl.cpu.plugin" in sys.modules
        try:
            verify_plugin_active()
            gpu_error = None
        except RuntimeError as error:
            gpu_error = str(error)
        torch.cuda.is_available = real_is_available
        from verl.plugin.platform import get_platform
        get_platform()  # resolves to verl's fallback (nvidia) since the plugin failed
        try:  # importing the plugin with CURES_CPU_MODE=1 activates it
            from cures_verl.cpu import plugin
            late_error = None
        except RuntimeError as error:
            late_error = str(error)
        print(json.dumps({"loaded": loaded, "gpu_error": gpu_error, "late_error": late_error,
                          "reloaded": "cures_verl.cpu.plugin" in sys.modules}))
        """,
        CURES_CPU_MODE="1",
    )
    assert report["loaded"] is False  # the failed import left nothing behind: verl would run without it
    assert "must not run on a GPU machine" in report["gpu_error"]
    assert "already resolved its platform to PlatformCUDA" in report["late_error"]
    assert report["reloaded"] is False


# ----------------------------------------------------------------------------------------- platform (no registration)


def test_cpu_platform_answers_what_verl_asks():
    platform = CpuPlatform()
    assert (platform.device_name, platform.vendor_name, platform.current_device()) == ("cpu", "cpu", "cpu")
    assert platform.communication_backend_name() == "gloo"
    assert platform.ray_resource_name() == "GPU" and platform.ray_resource_options(0.5) == {"num_gpus": 0.5}
    assert platform.is_available() and platform.is_platform_available(use_smi_check=True)
    assert platform.get_device_capability() == (None, None) and not platform.is_ipc_supported()
    assert platform.ray_noset_envvars() == [] and platform.cudart() is None
    with platform.nvtx_range("anything"):
        pass
    assert torch.device(platform.current_device()).type == "cpu"


def test_cpu_platform_seeds_the_cpu_generator():
    platform = CpuPlatform()
    platform.manual_seed(11)
    first = torch.rand(2)
    platform.manual_seed_all(11)
    assert torch.equal(torch.rand(2), first)


def test_device_module_implements_verls_calls_and_names_unknown_ones():
    module = CpuDeviceModule()
    assert module.get_device_name() == "CPU" and module.current_device() == "cpu"
    free, total = module.mem_get_info()
    assert 0 < free <= total
    assert module.get_device_properties().total_memory == total
    assert module.memory_allocated() == module.max_memory_reserved() == 0
    state = module.get_rng_state()
    sample = torch.rand(1)
    module.set_rng_state(state)
    assert torch.equal(torch.rand(1), sample)
    for call in ("empty_cache", "ipc_collect", "synchronize", "reset_peak_memory_stats"):
        assert getattr(module, call)() is None
    with pytest.raises(AttributeError, match=r"torch.<device>.graph_pool_handle.*real accelerator"):
        module.graph_pool_handle()  # noqa: B018
    assert not hasattr(module, "memory_snapshot")
