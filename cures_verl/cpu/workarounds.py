"""Every workaround CPU mode applies to verl 0.9.1, in one place, each with the verl line it works around.

Code workarounds (applied by :func:`apply_all` from the plugin, in every process, only in CPU mode):

``W1 backend string`` (monkeypatch)
    ``verl/utils/distributed.py:89``: ``initialize_global_process_group_ray`` defaults the backend to
    ``f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"``. On the CPU platform that is
    ``"cpu:gloo,cpu:gloo"`` and ``torch.distributed`` rejects it ("Duplicate device type cpu"). Called without
    a backend by ``verl/workers/engine_workers.py:89`` (every training worker). The patch wraps the function so
    a missing backend becomes ``"cpu:gloo"`` on the CPU platform; an explicit backend is passed through.

``W2 engine device`` (environment)
    ``verl/workers/engine/fsdp/transformer_impl.py:1143,1594`` register the FSDP engines for devices
    ``["cuda", "npu"]`` only, so ``EngineRegistry.get_engine_cls`` finds none for ``cpu``. verl's own override
    ``VERL_ENGINE_DEVICE`` (``verl/workers/engine/base.py:405-406``) selects the CUDA registration, whose
    classes are device-agnostic (they place tensors with ``get_device_id()``, i.e. ``"cpu"``).

``W3 worker rollout registry`` (private API)
    ``verl/workers/rollout/base.py:89-93``: the worker-side rollout classes live in the private dict
    ``_ROLLOUT_REGISTRY`` with no register function; ``get_rollout_class`` (:96) only reads it. We insert
    ``("hf", "async")``. The server side uses the public ``RolloutReplicaRegistry.register``
    (``verl/workers/rollout/replica.py:312-318``), done in the plugin.

Configuration workarounds (keys in ``cpu_profile.yaml``, recorded here so the upstream tests cover them):

``W4 logical GPUs``
    ``verl/single_controller/ray/base.py:210`` builds every resource pool with ``use_gpu=True`` and :226-238
    count only ``GPU``/``NPU`` resources: Ray must be started with logical GPUs
    (``+ray_kwargs.ray_init.num_gpus``); the CPU platform maps its Ray resource to ``GPU``.

``W5 no auto device``
    ``verl/utils/device.py:159-166`` (``auto_set_device``) never sets ``trainer.device`` to ``cpu`` (it skips
    a detected ``cpu``), so the profile sets ``trainer.device=cpu``.

``W6 TransferQueue storage units``
    ``transfer_queue/storage/simple_storage.py:722`` reserves one CPU per ``SimpleStorageUnit`` and verl
    defaults to 8 units (``verl/trainer/config/transfer_queue/transfer_queue.yaml``); actors that cannot be
    placed make V1 block forever in ``simple_storage_bootstrap.py:85``. The profile uses 1 unit and
    :func:`cures_verl.cpu.resources.check_ray_resources` refuses unplaceable configs.

``W7 replay-buffer poll`` (monkeypatch, applied in the trainer's TaskRunner by :func:`patch_replay_buffer_poll`)
    ``verl/trainer/ppo/v1/replay_buffer.py:144,409``: V1's sync ``ReplayBuffer`` sleeps ``poll_interval`` between
    checks for finished rollouts, a constructor default of 2.0 s that ``trainer_base.py:155-185``
    (``_build_replay_buffer``) never sets and no config key exposes. On GPUs generation takes far longer than
    the poll; on CPU a tiny model generates in well under a second, so every step waited for the next 2 s
    boundary (``timing_s/gen`` was 2.0 or 4.0 s). The patch makes the default ``CURES_CPU_REPLAY_POLL_S``
    (0.1 s unless set); an explicit ``poll_interval`` is passed through. It changes when the trainer notices
    finished rollouts, never what is trained.

``W8 batch order`` (monkeypatch, applied in the trainer's TaskRunner by :func:`patch_replay_buffer_order`)
    ``verl/trainer/ppo/v1/replay_buffer.py:395-405`` (``_materialize_batch``) lays the batch out in the order the
    trajectories reached TransferQueue (``agent_loop_tq.py:222``), i.e. the order concurrent rollouts happened to
    finish; and which of a prompt's sessions got which response depends on request arrival too. The same rollouts
    then reach the actor in another order and the update differs in the 4th digit (float sums), so two runs
    with ``rollout.full_determinism=true`` did not repeat (``actor/grad_norm`` 0.60588 vs 0.60597; on 2 cores
    every one of 4 runs saw another arrival order). The patch sorts each batch by content (prompt tokens,
    response tokens; equal rows by submission order, output index, session): 4 runs with 4 arrival orders then
    all gave grad_norm 0.6059663. The batch holds the same rows; only their order changes.

``tests/cpu/test_upstream_workarounds.py`` asserts that verl still behaves as described, so each
test fails (and its workaround can go) when upstream changes.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENGINE_DEVICE_ENV",
    "HF_ADAPTER_FQN",
    "WORKAROUNDS",
    "Workaround",
    "REPLAY_POLL_ENV",
    "apply_all",
    "patch_process_group_backend",
    "patch_replay_buffer_order",
    "patch_replay_buffer_poll",
    "register_worker_rollout",
    "select_engine_device",
]

logger = logging.getLogger(__name__)

ENGINE_DEVICE_ENV = "VERL_ENGINE_DEVICE"
ENGINE_DEVICE = "cuda"
CPU_BACKEND = "cpu:gloo"
HF_ROLLOUT_NAME = "hf"
HF_ADAPTER_FQN = "cures_verl.cpu.hf_rollout.HFServerAdapter"
_PATCH_MARKER = "__cures_cpu_patched__"
REPLAY_POLL_ENV = "CURES_CPU_REPLAY_POLL_S"
DEFAULT_REPLAY_POLL_S = 0.1


@dataclass(frozen=True)
class Workaround:
    """One workaround: what it is, where in verl, and how CPU mode applies it."""

    key: str
    verl_location: str
    kind: str
    summary: str


WORKAROUNDS: tuple[Workaround, ...] = (
    Workaround(
        "W1",
        "verl/utils/distributed.py:89",
        "monkeypatch",
        "default backend 'cpu:gloo,cpu:gloo' is rejected; default to 'cpu:gloo' on the CPU platform",
    ),
    Workaround(
        "W2",
        "verl/workers/engine/fsdp/transformer_impl.py:1143,1594",
        "environment",
        "FSDP engines registered for cuda/npu only; VERL_ENGINE_DEVICE=cuda selects them",
    ),
    Workaround(
        "W3",
        "verl/workers/rollout/base.py:89-93",
        "private API",
        "worker-side rollout registry is a private dict; insert ('hf', 'async')",
    ),
    Workaround(
        "W4",
        "verl/single_controller/ray/base.py:210,226-238",
        "config",
        "resource pools always need GPUs; start Ray with logical GPUs",
    ),
    Workaround("W5", "verl/utils/device.py:159-166", "config", "auto_set_device never selects cpu; set trainer.device"),
    Workaround(
        "W6",
        "transfer_queue/storage/simple_storage.py:722",
        "config",
        "8 storage units x 1 CPU each hang V1 when unplaceable; use 1 unit and check resources first",
    ),
    Workaround(
        "W7",
        "verl/trainer/ppo/v1/replay_buffer.py:144,409",
        "monkeypatch",
        "the sync replay buffer polls every 2 s (not configurable), the floor of a CPU step; default it to 0.1 s",
    ),
    Workaround(
        "W8",
        "verl/trainer/ppo/v1/replay_buffer.py:395-405",
        "monkeypatch",
        "batches are laid out in rollout arrival order, so identical runs differ in the last digits; sort by content",
    ),
)


def _cpu_backend_default(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def initialize_global_process_group_ray(timeout_second: Any = None, backend: str | None = None) -> Any:
        from verl.utils.device import get_device_name

        if backend is None and get_device_name() == "cpu":
            backend = CPU_BACKEND
        return function(timeout_second=timeout_second, backend=backend)

    setattr(initialize_global_process_group_ray, _PATCH_MARKER, True)
    return initialize_global_process_group_ray


def patch_process_group_backend() -> None:
    """W1: make ``initialize_global_process_group_ray`` default to ``"cpu:gloo"`` on the CPU platform.

    Patches ``verl.utils.distributed`` and, if already imported, the name bound in
    ``verl.workers.engine_workers`` and ``verl.checkpoint_engine.base``. Idempotent.
    """
    import verl.utils.distributed as distributed

    current = distributed.initialize_global_process_group_ray
    if not getattr(current, _PATCH_MARKER, False):
        distributed.initialize_global_process_group_ray = _cpu_backend_default(current)
    for module_name in ("verl.workers.engine_workers", "verl.checkpoint_engine.base"):
        module = sys.modules.get(module_name)
        bound = getattr(module, "initialize_global_process_group_ray", None) if module else None
        if bound is not None and not getattr(bound, _PATCH_MARKER, False):
            module.initialize_global_process_group_ray = distributed.initialize_global_process_group_ray  # type: ignore[union-attr]


def select_engine_device() -> None:
    """W2: set ``VERL_ENGINE_DEVICE=cuda`` so verl's FSDP engine registration is found.

    Raises:
        RuntimeError: If ``VERL_ENGINE_DEVICE`` is already set to another value (we would silently override
            the user's engine choice).
    """
    current = os.environ.get(ENGINE_DEVICE_ENV)
    if current not in (None, "", ENGINE_DEVICE):
        raise RuntimeError(
            f"{ENGINE_DEVICE_ENV}={current!r} conflicts with CPU mode, which needs {ENGINE_DEVICE!r} to select verl's "
            f"FSDP engine (registered for cuda/npu only); unset {ENGINE_DEVICE_ENV}"
        )
    os.environ[ENGINE_DEVICE_ENV] = ENGINE_DEVICE


def register_worker_rollout(name: str = HF_ROLLOUT_NAME, adapter_fqn: str = HF_ADAPTER_FQN) -> None:
    """W3: map ``(name, "async")`` to ``adapter_fqn`` in verl's private worker-side rollout registry.

    Raises:
        RuntimeError: If the name is already registered to another class.
    """
    from verl.workers.rollout import base

    key = (name, "async")
    existing = base._ROLLOUT_REGISTRY.get(key)
    if existing not in (None, adapter_fqn):
        raise RuntimeError(f"rollout {name!r} is already registered in verl as {existing!r}; pick another name")
    base._ROLLOUT_REGISTRY[key] = adapter_fqn


def replay_poll_seconds() -> float:
    """The replay-buffer poll interval of CPU mode: ``CURES_CPU_REPLAY_POLL_S`` or 0.1 s.

    Raises:
        ValueError: If the variable is not a positive number.
    """
    raw = os.environ.get(REPLAY_POLL_ENV, "")
    if not raw:
        return DEFAULT_REPLAY_POLL_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{REPLAY_POLL_ENV}={raw!r} is invalid: give the poll interval in seconds, a number > 0")
    return value


def patch_replay_buffer_poll() -> None:
    """W7: default verl V1 ``ReplayBuffer``'s ``poll_interval`` to :func:`replay_poll_seconds` (idempotent).

    Call it in the process that builds the trainer (the TaskRunner actor), after CPU mode is active.

    Raises:
        ValueError: From :func:`replay_poll_seconds`.
    """
    from verl.trainer.ppo.v1 import replay_buffer

    seconds = replay_poll_seconds()
    init = replay_buffer.ReplayBuffer.__init__
    original = getattr(init, "__wrapped__", init) if getattr(init, _PATCH_MARKER, False) else init

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("poll_interval", seconds)
        original(self, *args, **kwargs)

    setattr(__init__, _PATCH_MARKER, True)
    replay_buffer.ReplayBuffer.__init__ = __init__  # type: ignore[method-assign]


def content_order(
    keys: Sequence[str],
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    prompt_uids: Sequence[str],
) -> list[int]:
    """W8: the positions of a batch's trajectories sorted by content, independent of arrival order.

    Args:
        keys: TransferQueue keys, ``{uid}_{session_id}_{index}`` (``verl/trainer/ppo/v1/replay_buffer.py:70``).
        prompts: Each trajectory's prompt token ids.
        responses: Each trajectory's response token ids.
        prompt_uids: The prompt uids in the order the trainer submitted them; it breaks ties between equal
            prompt/response pairs of different prompts (a prompt that occurs twice in a batch).

    Returns:
        A permutation of ``range(len(keys))``: by prompt tokens, response tokens, then (rows equal in content)
        submission order, output index and session id, so every key has one place.

    Raises:
        ValueError: If the lengths differ, or a key is not ``{uid}_{session}_{index}`` with its uid among
            ``prompt_uids``.
    """
    if not len(keys) == len(prompts) == len(responses):
        raise ValueError(
            f"W8: {len(keys)} keys, {len(prompts)} prompts and {len(responses)} responses differ in length"
        )
    submitted = {uid: rank for rank, uid in enumerate(prompt_uids)}
    sort_keys = []
    for position, key in enumerate(keys):
        uid, session, index = (key.split("_") + ["", ""])[:3]
        if uid not in submitted or not (session.isdigit() and index.isdigit()):
            raise ValueError(
                f"W8: trajectory key {key!r} is not '{{uid}}_{{session}}_{{index}}' of a submitted prompt; "
                "verl's key format changed? (verl/trainer/ppo/v1/agent_loop_tq.py)"
            )
        content = (tuple(prompts[position]), tuple(responses[position]))
        sort_keys.append((*content, submitted[uid], int(index), int(session)))
    return sorted(range(len(keys)), key=sort_keys.__getitem__)


def patch_replay_buffer_order() -> None:
    """W8: make verl V1 ``ReplayBuffer`` lay each batch out by content (:func:`content_order`), idempotent.

    Call it in the process that builds the trainer (the TaskRunner actor), after CPU mode is active.
    """
    from verl.trainer.ppo.v1 import replay_buffer

    current = replay_buffer.ReplayBuffer._materialize_batch
    original = getattr(current, "__wrapped__", current) if getattr(current, _PATCH_MARKER, False) else current

    @functools.wraps(original)
    def _materialize_batch(self: Any, partition_id: str, selected_prompt_uids: list[str], snapshot: dict) -> Any:
        batch = original(self, partition_id, selected_prompt_uids, snapshot)
        if len(batch.keys) < 2:
            return batch
        data = replay_buffer.tq.kv_batch_get(
            keys=batch.keys, partition_id=partition_id, select_fields=["prompts", "responses"]
        )
        prompts = [row.tolist() for row in data["prompts"].unbind()]
        responses = [row.tolist() for row in data["responses"].unbind()]
        order = content_order(batch.keys, prompts, responses, list(self.prompt_global_steps[partition_id]))
        return type(batch)(
            partition_id=batch.partition_id,
            keys=[batch.keys[i] for i in order],
            tags=[batch.tags[i] for i in order],
            fields=batch.fields,
            extra_info=batch.extra_info,
        )

    setattr(_materialize_batch, _PATCH_MARKER, True)
    replay_buffer.ReplayBuffer._materialize_batch = _materialize_batch  # type: ignore[method-assign]


def apply_all() -> None:
    """Apply the code workarounds W1-W3 in every process (W7 and W8 are applied by the TaskRunner; the config ones
    live in ``cpu_profile.yaml``)."""
    patch_process_group_backend()
    select_engine_device()
    register_worker_rollout()
    applied = (w.key for w in WORKAROUNDS if w.kind != "config" and w.key not in ("W7", "W8"))
    logger.debug("CPU mode workarounds applied: %s", ", ".join(applied))
