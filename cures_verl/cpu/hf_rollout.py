"""CPU mode's ``hf`` rollout for verl 0.9.1: a transformers generation server wired into both registries.

verl's trainers talk to rollouts through three pieces (``verl/workers/rollout/replica.py``, ``base.py``,
``llm_server.py``); this module provides each for ``actor_rollout_ref.rollout.name=hf``:

* :class:`HFRolloutServer`, a Ray actor holding an :class:`~.hf_engine.HFGenerationEngine`. verl's agent loop
  calls its ``generate(request_id, *, prompt_ids, sampling_params, ...) -> TokenOutput`` concurrently (V1
  spawns one request per rollout, ``__rollout_n__`` of them per prompt); the server queues requests for a few
  milliseconds and runs requests with equal sampling settings as one batch. The control methods verl calls
  around weight syncs (``sleep``, ``wake_up``, ``abort_all_requests``...) are no-ops: the model stays in host
  memory and a sync trainer never syncs while generating.
* :class:`HFReplica` (``RolloutReplica``), registered with ``RolloutReplicaRegistry``: in hybrid mode it starts
  one server per trainer rank, on that rank's node.
* :class:`HFServerAdapter` (``BaseRollout``), the worker-side half, registered in ``_ROLLOUT_REGISTRY``
  (see ``workarounds.py``, W3). With verl's ``naive`` checkpoint backend the trainer calls its
  ``update_weights`` in-process after every step with a generator of full ``(name, tensor)`` pairs
  (``verl/workers/engine_workers.py:728-806``); it ships them to its server through Ray in buckets of
  ``checkpoint_engine.update_weights_bucket_megabytes`` and the server checks that every parameter arrived.

Limits (each raises a clear error): one process per replica (``tensor/data/pipeline_model_parallel_size`` 1),
hybrid mode only, no LoRA adapter sync, no multimodal inputs, ``wire_format="named_tensors"`` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutMode, RolloutReplica, TokenOutput

from .hf_engine import GenerationResult, HFGenerationEngine, SamplingSettings
from .state import require_active

__all__ = ["HFReplica", "HFRolloutServer", "HFServerAdapter", "server_actor_name"]

logger = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.005


def server_actor_name(replica_rank: int) -> str:
    """Ray actor name of the server of replica ``replica_rank`` (found by the adapter with ``ray.get_actor``)."""
    return f"cures_hf_server_{replica_rank}"


def _require_single_process(config: RolloutConfig) -> None:
    world_size = config.tensor_model_parallel_size * config.data_parallel_size * config.pipeline_model_parallel_size
    if world_size != 1:
        raise ValueError(
            "the hf rollout runs one process per replica: set actor_rollout_ref.rollout.tensor_model_parallel_size=1 "
            f"(and data/pipeline_model_parallel_size=1); got a replica world size of {world_size}"
        )


def _is_empty(value: Any) -> bool:
    # verl forwards optional request fields as None, 0 (priority) or empty containers when unused
    if value is None or (isinstance(value, int | float) and value == 0):
        return True
    return isinstance(value, dict | list | tuple) and len(value) == 0


@dataclass
class _Request:
    prompt_ids: list[int]
    settings: SamplingSettings
    future: asyncio.Future[GenerationResult] = field(repr=False)


class HFRolloutServer:
    """Ray actor serving token-in/token-out generation for one replica (created by :class:`HFReplica`).

    Args:
        config: The rollout config (``actor_rollout_ref.rollout``), dataclass or DictConfig.
        model_config: The model config (``actor_rollout_ref.model``), dataclass or DictConfig.
        replica_rank: Rank of the replica; added to ``rollout.seed`` to seed sampling.
        batch_window_s: How long the first queued request waits for others to join its batch.
    """

    def __init__(
        self,
        config: RolloutConfig | Any,
        model_config: HFModelConfig | Any,
        replica_rank: int,
        batch_window_s: float = BATCH_WINDOW_S,
    ) -> None:
        require_active("the hf rollout server")
        self.config: RolloutConfig = omega_conf_to_dataclass(config)  # via _target_, as verl's vLLM server does
        self.model_config: HFModelConfig = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        _require_single_process(self.config)
        tokenizer = self.model_config.tokenizer
        eos_ids = self.model_config.generation_config.eos_token_id if self.model_config.generation_config else None
        eos_ids = [eos_ids] if isinstance(eos_ids, int) else list(eos_ids or [])
        if tokenizer is not None and tokenizer.eos_token_id is not None:
            eos_ids.append(tokenizer.eos_token_id)
        pad_id = tokenizer.pad_token_id if tokenizer is not None else None
        if pad_id is None:
            pad_id = eos_ids[0] if eos_ids else 0
        attn = self.model_config.override_config.get("attn_implementation", "sdpa")
        self.engine = HFGenerationEngine.from_pretrained(
            self.model_config.local_path,
            dtype=self.config.dtype,
            random_init="dummy" in str(self.config.load_format),
            attn_implementation=attn,
            eos_token_ids=eos_ids,
            pad_token_id=pad_id,
            max_model_len=self.config.max_model_len,
            seed=int(self.config.seed) + int(replica_rank),
        )
        self.replica_rank = replica_rank
        self.batch_window_s = batch_window_s
        self.max_batch_size = max(1, int(self.config.max_num_seqs))
        self.default_max_tokens = int(self.config.response_length)
        self.prompt_budget = int(self.config.prompt_length) + int(self.config.response_length)
        self.global_steps: int | None = None
        # full_determinism: every request gets a seed from (rollout seed, weights version, prompt, occurrence), so
        # the responses to a prompt do not depend on which other requests share its batch or arrive first
        self.deterministic = bool(getattr(self.config, "full_determinism", False))
        self._base_seed = int(self.config.seed) + int(replica_rank)
        self._occurrences: dict[tuple[int | None, tuple[int, ...]], int] = {}
        self._queue: list[_Request] = []
        self._queue_event: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._model_lock: asyncio.Lock | None = None
        logger.info("hf rollout server %d ready (%s)", replica_rank, self.model_config.local_path)

    async def ready(self) -> int:
        """Return the replica rank once the actor is constructed (the replica awaits it)."""
        return self.replica_rank

    # ------------------------------------------------------------------ generation

    def _lock(self) -> asyncio.Lock:
        if self._model_lock is None:
            self._model_lock = asyncio.Lock()
        return self._model_lock

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: Sequence[int],
        sampling_params: dict[str, Any],
        image_data: Any = None,
        video_data: Any = None,
        **kwargs: Any,
    ) -> TokenOutput:
        """Generate one response (verl's server contract, ``llm_server.py:150-158``).

        Args:
            request_id: verl's request id (unused: requests are independent).
            prompt_ids: Prompt token ids.
            sampling_params: verl's sampling parameters (see :meth:`SamplingSettings.from_verl`).
            image_data: Must be ``None`` (no multimodal support).
            video_data: Must be ``None``.
            **kwargs: Other keys verl may send (``audio_data``, ``mm_processor_kwargs``, ``priority``); must be
                empty or ``None``.

        Returns:
            ``TokenOutput`` with the tokens (EOS included), their log-probs when requested, ``stop_reason``
            ``"completed"`` and ``extra_fields["global_steps"]`` (weights version).

        Raises:
            NotImplementedError: For multimodal inputs.
            ValueError: For an unsupported sampling parameter or a too long prompt.
        """
        extra = sorted(key for key, value in kwargs.items() if not _is_empty(value))
        if image_data is not None or video_data is not None or extra:
            raise NotImplementedError(
                f"the hf rollout serves text-only requests; got multimodal/extra inputs {extra or ['image/video']}"
            )
        prompt = [int(token) for token in prompt_ids]
        default_max = min(self.default_max_tokens, self.prompt_budget - len(prompt))
        params = dict(sampling_params)
        params.setdefault("ignore_eos", bool(self.config.ignore_eos))  # as verl's vLLM server does (:623)
        settings = SamplingSettings.from_verl(params, default_max_tokens=max(1, default_max))
        loop = asyncio.get_running_loop()
        request = _Request(prompt_ids=prompt, settings=settings, future=loop.create_future())
        self._queue.append(request)
        if self._queue_event is None:
            self._queue_event = asyncio.Event()
        self._queue_event.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve())
        result = await request.future
        return TokenOutput(
            token_ids=result.token_ids,
            log_probs=result.log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def _serve(self) -> None:
        assert self._queue_event is not None
        while True:
            await self._queue_event.wait()
            await asyncio.sleep(self.batch_window_s)
            self._queue_event.clear()
            pending, self._queue = self._queue, []
            # group by settings, keeping arrival order: [a1, b1, a2] -> {a: [a1, a2], b: [b1]}
            groups: dict[SamplingSettings, list[_Request]] = {}
            for request in pending:
                groups.setdefault(request.settings, []).append(request)
            for settings, requests in groups.items():
                for start in range(0, len(requests), self.max_batch_size):
                    await self._run_batch(settings, requests[start : start + self.max_batch_size])
            if not self._queue:
                self._queue_event.clear()

    def _request_seed(self, prompt: list[int]) -> int:
        """Seed of the next request for ``prompt`` under the current weights (full_determinism)."""
        key = (self.global_steps, tuple(prompt))
        occurrence = self._occurrences.get(key, 0)
        self._occurrences[key] = occurrence + 1
        digest = hashlib.sha256(repr((self._base_seed, key, occurrence)).encode()).digest()
        return int.from_bytes(digest[:8], "little") & (2**63 - 1)

    async def _run_batch(self, settings: SamplingSettings, requests: list[_Request]) -> None:
        prompts = [request.prompt_ids for request in requests]
        extra = {"seeds": [self._request_seed(prompt) for prompt in prompts]} if self.deterministic else {}
        try:
            async with self._lock():
                results = await asyncio.to_thread(self.engine.generate, prompts, settings, **extra)
        except Exception as error:  # the error goes to every waiting agent loop, which logs it
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        for request, result in zip(requests, results, strict=True):
            if not request.future.done():
                request.future.set_result(result)

    # ------------------------------------------------------------------ weights

    async def begin_weight_update(self) -> None:
        """Start a full weight update (blocks generation until it finishes)."""
        await self._lock().acquire()
        self.engine.begin_weight_update()

    async def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> int:
        """Load one bucket of full tensors; returns how many were loaded."""
        return self.engine.load_weights(named_tensors)

    async def finish_weight_update(self, global_steps: int | None = None) -> int:
        """Check every parameter was updated, record the weights version and resume generation.

        Raises:
            WeightUpdateError: If parameters were left stale.
        """
        try:
            return self.engine.finish_weight_update()
        finally:
            self.global_steps = global_steps
            self._occurrences.clear()
            self._lock().release()

    async def abort_weight_update(self) -> None:
        """Give up a failed weight update and resume generation (the adapter re-raises the cause)."""
        self.engine.abort_weight_update()
        self._lock().release()

    async def set_global_steps(self, global_steps: int) -> None:
        """Record the weights version reported in ``TokenOutput.extra_fields``."""
        self.global_steps = global_steps

    # ------------------------------------------------------------------ control (no-ops on CPU)

    async def wake_up(self, tags: list[str] | None = None) -> None:
        """No-op: the model never leaves host memory."""

    async def sleep(self) -> None:
        """No-op: there is no accelerator memory to free."""

    async def abort_all_requests(self, reject_request: bool = False) -> None:
        """No-op: the sync trainer only syncs weights when no request is in flight."""

    async def resume_generation(self) -> None:
        """No-op, see :meth:`abort_all_requests`."""

    async def clear_kv_cache(self) -> None:
        """No-op: ``generate`` keeps no cache between requests."""

    async def release_kv_cache(self) -> None:
        """No-op, see :meth:`clear_kv_cache`."""

    async def resume_kv_cache(self) -> None:
        """No-op, see :meth:`clear_kv_cache`."""

    async def start_profile(self, **kwargs: Any) -> None:
        """No-op: no rollout profiler in CPU mode."""

    async def stop_profile(self) -> None:
        """No-op: no rollout profiler in CPU mode."""


class HFReplica(RolloutReplica):
    """Rollout replica whose server is an :class:`HFRolloutServer` (hybrid mode: one per trainer rank)."""

    async def launch_servers(self) -> None:
        """Start this replica's server on the node of its trainer worker.

        Raises:
            NotImplementedError: Outside hybrid mode (standalone/colocated rollout pools).
            ValueError: If the replica spans more than one process.
        """
        require_active("the hf rollout replica")
        _require_single_process(self.config)
        if self.rollout_mode != RolloutMode.HYBRID:
            raise NotImplementedError(
                f"the hf rollout supports hybrid mode only (got {self.rollout_mode}); use the sync V1 trainer with "
                "actor_rollout_ref.hybrid_engine=true"
            )
        worker = self.workers[0]
        node_id = await worker.__ray_call__.remote(lambda _self: ray.get_runtime_context().get_node_id())
        server = (
            ray.remote(HFRolloutServer)
            .options(
                name=server_actor_name(self.replica_rank),
                scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                    node_id=node_id, soft=False
                ),
                max_concurrency=self.max_concurrency,
                num_cpus=0,
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.ready.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf-replica-{self.replica_rank}"


class HFServerAdapter(BaseRollout):
    """Worker-side half of the ``hf`` rollout: pushes the trainer's weights to this rank's server."""

    def __init__(self, config: RolloutConfig, model_config: HFModelConfig, device_mesh: Any, replica_rank: int = -1):
        require_active("the hf rollout adapter")
        super().__init__(config, model_config, device_mesh)
        _require_single_process(self.config)
        self.replica_rank = int(os.environ["RANK"]) if replica_rank == -1 else replica_rank
        self._server: Any = None

    def _server_handle(self) -> Any:
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        """No-op: weights and cache never leave host memory."""

    async def release(self) -> None:
        """No-op, see :meth:`resume`."""

    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        **kwargs: Any,
    ) -> None:
        """Send the full weights to this rank's server, in buckets, then check all parameters arrived.

        Args:
            weights: ``(name, full tensor)`` pairs from the trainer (consumed completely: FSDP2 gathers shards
                collectively while it is iterated).
            wire_format: Must be ``"named_tensors"``.
            **kwargs: ``global_steps`` (weights version), ``peft_config`` (must be ``None``), ``base_sync_done``.

        Raises:
            NotImplementedError: For delta updates or LoRA adapter syncs.
            WeightUpdateError: (from the server) If parameters were missing.
        """
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the hf rollout accepts wire_format='named_tensors' only, got {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError(
                "the hf rollout cannot load LoRA adapters; merge them (actor_rollout_ref.model.lora.merge=true)"
            )
        start = time.perf_counter()
        server = self._server_handle()
        bucket_limit = int(self.config.checkpoint_engine.update_weights_bucket_megabytes) << 20
        await server.begin_weight_update.remote()
        try:
            bucket: list[tuple[str, torch.Tensor]] = []
            size = 0
            for name, tensor in weights:
                cpu_tensor = tensor.detach().to("cpu").contiguous()
                bucket.append((name, cpu_tensor))
                size += cpu_tensor.numel() * cpu_tensor.element_size()
                if size >= bucket_limit:
                    await server.load_weights.remote(bucket)
                    bucket, size = [], 0
            if bucket:
                await server.load_weights.remote(bucket)
        except BaseException:
            await server.abort_weight_update.remote()
            raise
        num_updated = await server.finish_weight_update.remote(kwargs.get("global_steps"))
        logger.debug(
            "hf rollout %d: %d parameters updated in %.3fs", self.replica_rank, num_updated, time.perf_counter() - start
        )
