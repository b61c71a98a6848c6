"""verl still behaves the way CPU mode's workarounds assume (W1-W8 in ``workarounds.py``).

Each test asserts the *upstream* behaviour a workaround exists for. When one fails after a verl upgrade, the
bug was fixed or the code moved: drop or adapt that workaround, then this test. The tests touch no global
state of this process beyond what ``monkeypatch`` restores (CPU mode is never activated here).
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from cures_verl.cpu import workarounds  # noqa: E402
from cures_verl.cpu.platform import CpuPlatform  # noqa: E402


def test_pinned_verl_version():
    import verl

    assert verl.__version__ == "0.9.1", "the workarounds were checked against verl 0.9.1; re-check each one"


# ----------------------------------------------------------------------------------------- W1 backend string


def _captured_backend(monkeypatch, function, **kwargs):
    import verl.utils.distributed as distributed

    captured = {}
    monkeypatch.setattr(distributed, "get_device_name", lambda: "cpu")
    monkeypatch.setattr(distributed, "get_nccl_backend", lambda: "gloo")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: captured.update(kw))
    function(**kwargs)
    return captured["backend"]


def test_w1_verl_still_builds_a_duplicate_cpu_backend(monkeypatch):
    import verl.utils.distributed as distributed

    original = getattr(distributed.initialize_global_process_group_ray, "__wrapped__", None)
    original = original or distributed.initialize_global_process_group_ray
    assert _captured_backend(monkeypatch, original, timeout_second=None) == "cpu:gloo,cpu:gloo"


def test_w1_torch_rejects_the_duplicate_backend():
    from torch.distributed import Backend

    with pytest.raises(ValueError, match="Duplicate device type cpu"):
        torch.distributed.distributed_c10d.BackendConfig(Backend("cpu:gloo,cpu:gloo"))


def test_w1_engine_workers_still_call_it_without_a_backend():
    from verl.workers import engine_workers

    source = inspect.getsource(engine_workers.TrainingWorker.__init__)
    assert "initialize_global_process_group_ray(timeout_second=None)" in source


def test_w1_patch_defaults_to_gloo_on_cpu_and_passes_explicit_backends(monkeypatch):
    import verl.utils.device as device
    import verl.utils.distributed as distributed

    original = getattr(distributed.initialize_global_process_group_ray, "__wrapped__", None)
    original = original or distributed.initialize_global_process_group_ray
    patched = workarounds._cpu_backend_default(original)
    monkeypatch.setattr(device, "get_device_name", lambda: "cpu")
    assert _captured_backend(monkeypatch, patched, timeout_second=None) == "cpu:gloo"
    assert _captured_backend(monkeypatch, patched, backend="cpu:gloo,cuda:nccl") == "cpu:gloo,cuda:nccl"


# ----------------------------------------------------------------------------------------- W2 engine device


def test_w2_fsdp_engines_are_still_registered_for_cuda_and_npu_only():
    from verl.workers.engine import EngineRegistry

    for model_type in ("language_model", "value_model"):
        for backend in ("fsdp", "fsdp2"):
            assert set(EngineRegistry._engines[model_type][backend]) == {"cuda", "npu"}


def test_w2_verl_engine_device_env_still_selects_the_cuda_registration(monkeypatch):
    import verl.workers.engine.base as engine_base
    from verl.workers.engine import EngineRegistry

    monkeypatch.setattr(engine_base, "get_device_name", lambda: "cpu")
    monkeypatch.setattr(engine_base, "get_vendor", lambda: "cpu")
    monkeypatch.delenv("VERL_ENGINE_DEVICE", raising=False)
    with pytest.raises(ValueError, match="No engine registered for device='cpu'"):
        EngineRegistry.get_engine_cls("language_model", "fsdp2")
    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cuda")
    assert EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__ == "FSDPEngineWithLMHead"


def test_w2_engine_device_conflict_is_refused(monkeypatch):
    monkeypatch.setenv("VERL_ENGINE_DEVICE", "npu")
    with pytest.raises(RuntimeError, match="VERL_ENGINE_DEVICE='npu'"):
        workarounds.select_engine_device()


# ----------------------------------------------------------------------------------------- W3 rollout registry


def test_w3_worker_rollout_registry_is_still_a_private_dict_without_register_function():
    from verl.workers.rollout import base

    assert isinstance(base._ROLLOUT_REGISTRY, dict)
    assert all(isinstance(key, tuple) and len(key) == 2 for key in base._ROLLOUT_REGISTRY)
    public_registration = [name for name in dir(base) if "register" in name.lower() and not name.startswith("_")]
    assert public_registration == [], f"verl now offers {public_registration}: use it instead of W3"


def test_w3_registration_is_read_by_get_rollout_class(monkeypatch):
    from verl.workers.rollout import base

    monkeypatch.setattr(base, "_ROLLOUT_REGISTRY", dict(base._ROLLOUT_REGISTRY))
    workarounds.register_worker_rollout("cures_test", "cures_verl.cpu.platform.CpuPlatform")
    assert base.get_rollout_class("cures_test") is CpuPlatform
    with pytest.raises(RuntimeError, match="already registered"):
        workarounds.register_worker_rollout("cures_test", "somewhere.Else")


def test_w3_the_custom_async_server_config_is_still_dead():
    """rollout.agent.custom_async_server exists in the schema, but nothing reads it (so no config-only route)."""
    import pathlib

    import verl

    root = pathlib.Path(verl.__file__).parent
    readers = [
        path
        for path in root.rglob("*.py")
        if "custom_async_server" in path.read_text(errors="ignore") and path.name != "rollout.py"
    ]
    assert readers == []


# ----------------------------------------------------------------------------------------- W4 logical GPUs


def test_w4_resource_pools_always_request_gpus(monkeypatch):
    import verl.single_controller.ray.base as ray_base

    created = []

    class RecordingPool:
        def __init__(self, **kwargs):
            created.append(kwargs)

    monkeypatch.setattr(ray_base, "RayResourcePool", RecordingPool)
    monkeypatch.setattr(ray_base.ResourcePoolManager, "_check_resource_available", lambda self: None)
    ray_base.ResourcePoolManager(resource_pool_spec={"global_pool": [1]}, mapping={}).create_resource_pool()
    assert created == [
        {"process_on_nodes": [1], "use_gpu": True, "max_colocate_count": 3, "name_prefix": "global_pool"}
    ]


def test_w4_cluster_check_counts_only_gpu_and_npu(monkeypatch):
    import ray._private.state
    import verl.single_controller.ray.base as ray_base

    manager = ray_base.ResourcePoolManager(resource_pool_spec={"global_pool": [1]}, mapping={})
    monkeypatch.setattr(ray._private.state, "available_resources_per_node", lambda: {"node": {"CPU": 64.0}})
    with pytest.raises(ValueError, match="Total available GPUs 0 is less than total desired GPUs 1"):
        manager._check_resource_available()
    monkeypatch.setattr(ray._private.state, "available_resources_per_node", lambda: {"node": {"CPU": 1.0, "GPU": 1.0}})
    manager._check_resource_available()


def test_w4_bundles_take_the_platform_resource_name_and_three_cpus(monkeypatch):
    import verl.single_controller.ray.base as ray_base

    recorded = []

    class Ready:
        def ready(self):
            return None

    def fake_placement_group(bundles, **kwargs):  # verl calls placement_group(bundles=..., strategy=..., ...)
        recorded.append(bundles)
        return Ready()

    monkeypatch.setattr(ray_base, "get_platform", lambda: CpuPlatform())
    monkeypatch.setattr(ray_base, "placement_group", fake_placement_group)
    monkeypatch.setattr(ray_base.ray, "get", lambda refs: refs)
    monkeypatch.setattr(ray_base, "sort_placement_group_by_node_ip", lambda pgs: pgs)
    ray_base.RayResourcePool(process_on_nodes=[2], max_colocate_count=3).get_placement_groups(device_name="cpu")
    assert recorded == [[{"CPU": 3, "GPU": 1}, {"CPU": 3, "GPU": 1}]]


# ----------------------------------------------------------------------------------------- W5 device selection


def test_w5_auto_set_device_never_selects_cpu(monkeypatch):
    import verl.utils.device as device
    from omegaconf import OmegaConf

    monkeypatch.setattr(device, "get_platform", lambda: CpuPlatform())
    config = OmegaConf.create({"trainer": {"device": "cuda"}})
    device.auto_set_device(config)
    assert config.trainer.device == "cuda", "auto_set_device now selects cpu: trainer.device may leave the profile"


# ----------------------------------------------------------------------------------------- W6 Ray reservations


def test_w6_transfer_queue_actors_still_reserve_one_cpu_each_and_verl_defaults_to_8_units():
    from hydra import compose, initialize_config_module
    from transfer_queue.controller import TransferQueueController
    from transfer_queue.storage.simple_storage import SimpleStorageUnit

    assert SimpleStorageUnit._default_options["num_cpus"] == 1
    assert TransferQueueController._default_options["num_cpus"] == 1
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(config_name="ppo_trainer")
    assert config.transfer_queue.backend.SimpleStorage.num_data_storage_units == 8
    assert config.trainer.use_v1 is True


def test_w6_v1_task_runner_always_enables_the_transfer_queue():
    from verl.trainer import main_ppo

    assert "config.transfer_queue.enable = True" in inspect.getsource(main_ppo.TaskRunnerV1.run)


def test_w6_remote_reward_compute_workers_reserve_one_cpu():
    from verl.experimental.reward_loop.reward_manager.remote import RewardComputeWorker

    assert RewardComputeWorker._default_options["num_cpus"] == 1


# ----------------------------------------------------------------------------------------- W7 replay-buffer poll


def test_w7_sync_replay_buffer_still_polls_every_2_s_and_the_trainer_never_sets_it():
    from verl.trainer.ppo.v1 import replay_buffer, trainer_base

    if getattr(replay_buffer.ReplayBuffer.__init__, workarounds._PATCH_MARKER, False):
        pytest.skip("W7 is applied in this process (a CPU-mode test ran earlier in it)")
    assert inspect.signature(replay_buffer.ReplayBuffer.__init__).parameters["poll_interval"].default == 2.0
    assert "time.sleep(self.poll_interval)" in inspect.getsource(replay_buffer.ReplayBuffer._wait_for_next_poll)
    assert "poll_interval" not in inspect.getsource(trainer_base.PPOTrainer._build_replay_buffer)


def _replay_buffer(**kwargs):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    return ReplayBuffer("sync", OmegaConf.create({}), None, "drop", OmegaConf.create({}), **kwargs)


def test_w7_patch_shortens_the_default_poll_and_keeps_an_explicit_one(monkeypatch):
    from verl.trainer.ppo.v1 import replay_buffer

    monkeypatch.setattr(replay_buffer.ReplayBuffer, "__init__", replay_buffer.ReplayBuffer.__init__)
    monkeypatch.delenv(workarounds.REPLAY_POLL_ENV, raising=False)
    workarounds.patch_replay_buffer_poll()
    assert _replay_buffer().poll_interval == pytest.approx(0.1)
    assert _replay_buffer(poll_interval=3.0).poll_interval == 3.0
    monkeypatch.setenv(workarounds.REPLAY_POLL_ENV, "0.5")
    workarounds.patch_replay_buffer_poll()  # idempotent: re-patching wraps the original, not the wrapper
    assert _replay_buffer().poll_interval == pytest.approx(0.5)
    assert not getattr(replay_buffer.ReplayBuffer.__init__.__wrapped__, workarounds._PATCH_MARKER, False)


@pytest.mark.parametrize("value", ["0", "-1", "fast", "nan"])
def test_w7_refuses_a_poll_interval_that_is_not_a_positive_number(monkeypatch, value):
    monkeypatch.setenv(workarounds.REPLAY_POLL_ENV, value)
    with pytest.raises(ValueError, match=workarounds.REPLAY_POLL_ENV):
        workarounds.replay_poll_seconds()


def test_w7_w8_cpu_task_runner_applies_the_patches_before_verls_run(monkeypatch):
    import ray
    from verl.trainer.ppo.v1 import replay_buffer

    from cures_verl.cpu.launch import with_replay_buffer_patches

    monkeypatch.setattr(replay_buffer.ReplayBuffer, "__init__", replay_buffer.ReplayBuffer.__init__)
    monkeypatch.setattr(replay_buffer.ReplayBuffer, "_materialize_batch", replay_buffer.ReplayBuffer._materialize_batch)
    monkeypatch.delenv(workarounds.REPLAY_POLL_ENV, raising=False)
    seen = {}

    class Runner:
        def run(self, config):
            seen["config"] = config
            seen["poll"] = _replay_buffer().poll_interval
            seen["ordered"] = getattr(replay_buffer.ReplayBuffer._materialize_batch, workarounds._PATCH_MARKER, False)

    wrapped = with_replay_buffer_patches(ray.remote(Runner))
    runner = wrapped.__ray_actor_class__()  # the class Ray would start, called in-process
    assert isinstance(runner, Runner)
    from omegaconf import OmegaConf

    config = OmegaConf.create({"trainer": {"use_v1": True}})
    runner.run(config)
    assert seen == {"config": config, "poll": pytest.approx(0.1), "ordered": True}


# ----------------------------------------------------------------------------------------- W8 batch order


def test_w8_verl_lays_the_batch_out_in_transfer_queue_arrival_order():
    from verl.trainer.ppo.v1 import agent_loop_tq, replay_buffer

    if getattr(replay_buffer.ReplayBuffer._materialize_batch, workarounds._PATCH_MARKER, False):
        pytest.skip("W8 is applied in this process (a CPU-mode test ran earlier in it)")
    materialize = inspect.getsource(replay_buffer.ReplayBuffer._materialize_batch)
    assert "for key, tag in partition_snapshot.items():" in materialize  # kv_list order = arrival order
    assert "sort" not in materialize
    # each session's outputs are put as they finish, under {uid}_{session_id}_{index}
    assert 'keys.append(f"{uid}_{session_id}_{i}")' in inspect.getsource(agent_loop_tq)


class _FakeTQ:
    """TransferQueue's two calls ``_materialize_batch`` makes, over an in-memory table."""

    def __init__(self, rows):
        self.rows = rows  # key -> (prompt ids, response ids)
        self.cleared = []

    def kv_clear(self, keys, partition_id):
        self.cleared.append((partition_id, list(keys)))

    def kv_batch_get(self, keys, partition_id, select_fields):
        assert select_fields == ["prompts", "responses"]
        nested = {
            field: torch.nested.nested_tensor([torch.tensor(self.rows[k][i]) for k in keys], layout=torch.jagged)
            for i, field in enumerate(select_fields)
        }
        return nested


def _rows():
    # two prompts, the second submitted twice (a duplicate in the batch); 2 sessions each
    a, b = "aaaa-1", "bbbb-2"
    c = "cccc-3"
    return [a, b, c], {
        f"{a}_0_0": ([5, 6], [9, 1]),
        f"{a}_1_0": ([5, 6], [7, 7, 1]),
        f"{b}_0_0": ([3, 4], [2, 1]),
        f"{b}_1_0": ([3, 4], [8, 1]),
        f"{c}_0_0": ([3, 4], [8, 1]),
        f"{c}_1_0": ([3, 4], [2, 2, 1]),
    }


@pytest.mark.parametrize("seed", range(5))
def test_w8_patched_batch_layout_does_not_depend_on_arrival_order(monkeypatch, seed):
    import random

    from verl.trainer.ppo.v1 import replay_buffer

    monkeypatch.setattr(replay_buffer.ReplayBuffer, "_materialize_batch", replay_buffer.ReplayBuffer._materialize_batch)
    submitted, rows = _rows()
    arrival = list(rows)
    random.Random(seed).shuffle(arrival)
    fake = _FakeTQ(rows)
    monkeypatch.setattr(replay_buffer, "tq", fake)
    buffer = _replay_buffer()
    buffer.prompt_global_steps["train"] = {uid: 1 for uid in submitted}
    snapshot = {key: {"status": "success", "seq_len": len(sum(rows[key], []))} for key in arrival}

    unpatched = buffer._materialize_batch("train", submitted, snapshot)
    assert unpatched.keys == arrival  # verl: arrival order
    workarounds.patch_replay_buffer_order()
    workarounds.patch_replay_buffer_order()  # idempotent
    batch = buffer._materialize_batch("train", submitted, snapshot)
    b, c = submitted[1], submitted[2]
    # by prompt tokens, then response tokens; the duplicate prompt's equal rows keep submission order
    assert batch.keys == [f"{b}_0_0", f"{c}_1_0", f"{b}_1_0", f"{c}_0_0", "aaaa-1_1_0", "aaaa-1_0_0"]
    assert [tag["seq_len"] for tag in batch.tags] == [snapshot[k]["seq_len"] for k in batch.keys]
    assert fake.cleared[-1] == ("train", submitted)  # verl's own bookkeeping still runs


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(0, 3), max_size=3), st.lists(st.integers(0, 3), max_size=3)),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_w8_content_order_is_the_same_for_every_arrival_order(rows, rng):
    # rows: (prompt number, prompt ids, response ids); uids submitted in prompt-number order, 1 output per session
    keys = [f"uid{p}_{s}_0" for s, (p, _, _) in enumerate(rows)]
    submitted = [f"uid{p}" for p in sorted({p for p, _, _ in rows})]
    arrival = list(range(len(rows)))
    rng.shuffle(arrival)

    def layout(positions):
        ks = [keys[i] for i in positions]
        order = workarounds.content_order(
            ks, [rows[i][1] for i in positions], [rows[i][2] for i in positions], submitted
        )
        assert sorted(order) == list(range(len(ks)))
        return [ks[i] for i in order]

    laid_out = layout(range(len(rows)))
    assert laid_out == layout(arrival)
    contents = [(rows[keys.index(k)][1], rows[keys.index(k)][2]) for k in laid_out]
    assert contents == sorted(contents)


def test_w8_refuses_a_key_it_cannot_place():
    with pytest.raises(ValueError, match="zzz_0_0"):
        workarounds.content_order(["zzz_0_0"], [[1]], [[2]], ["aaa"])
    with pytest.raises(ValueError, match="aaa_x"):
        workarounds.content_order(["aaa_x"], [[1]], [[2]], ["aaa"])


# ----------------------------------------------------------------------------------------- profile reasons


def test_hf_model_config_still_defaults_to_flash_attention():
    from verl.workers.config.model import HFModelConfig

    assert 'override_config.get("attn_implementation", "flash_attention_2")' in inspect.getsource(
        HFModelConfig.__post_init__
    )


def test_fsdp_engine_still_reads_its_own_torch_compile_switch():
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    assert "self.engine_config.use_torch_compile" in inspect.getsource(FSDPEngine)
