"""The hf rollout's server and worker adapter, driven directly (no Ray actors: plain objects, one event loop)."""

from __future__ import annotations

import asyncio

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

from cures_verl.cpu import plugin  # noqa: E402
from cures_verl.cpu.hf_engine import WeightUpdateError  # noqa: E402
from cures_verl.cpu.hf_rollout import HFRolloutServer, HFServerAdapter  # noqa: E402
from cures_verl.cpu.launch import compose_cpu_config  # noqa: E402
from cures_verl.experiments.trainer import DigitSumProblem, build_model, demo_overrides, prompt_token_ids  # noqa: E402

SAMPLE = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}


@pytest.fixture(scope="module")
def verl_config(random_assets):
    return compose_cpu_config(demo_overrides(random_assets, train_batch_size=4, rollout_n=2, ppo_mini_batch_size=2))


@pytest.fixture
def cpu_mode_active(monkeypatch):
    monkeypatch.setattr(plugin.STATE, "active", True)


@pytest.fixture
def server(verl_config, cpu_mode_active):
    rollout = verl_config.actor_rollout_ref.rollout
    rollout.load_format = "auto"  # real weights from the model dir (verl's default 'dummy' is random init)
    return HFRolloutServer(rollout, verl_config.actor_rollout_ref.model, replica_rank=0, batch_window_s=0.02)


def prompts(tokenizer, count):
    return [prompt_token_ids(tokenizer, DigitSumProblem((i % 10, 3))) for i in range(count)]


class CountingEngine:
    """Wraps the server's engine to record each batch it runs."""

    def __init__(self, engine):
        self.engine = engine
        self.batches = []

    def generate(self, batch, settings):
        self.batches.append((len(batch), settings.temperature))
        return self.engine.generate(batch, settings)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def test_server_needs_cpu_mode(verl_config, monkeypatch):
    monkeypatch.setattr(plugin.STATE, "active", False)
    with pytest.raises(RuntimeError, match="needs CPU mode"):
        HFRolloutServer(verl_config.actor_rollout_ref.rollout, verl_config.actor_rollout_ref.model, replica_rank=0)


def test_server_refuses_tensor_parallel_replicas(verl_config, cpu_mode_active):
    from omegaconf import OmegaConf

    rollout = OmegaConf.to_container(verl_config.actor_rollout_ref.rollout, resolve=True)
    rollout["tensor_model_parallel_size"] = 2
    with pytest.raises(ValueError, match="tensor_model_parallel_size=1"):
        HFRolloutServer(OmegaConf.create(rollout), verl_config.actor_rollout_ref.model, replica_rank=0)


def test_concurrent_requests_with_equal_settings_share_one_batch(server, demo_tokenizer):
    counting = CountingEngine(server.engine)
    server.engine = counting

    async def scenario():
        same = [
            server.generate(f"r{i}", prompt_ids=p, sampling_params=SAMPLE)
            for i, p in enumerate(prompts(demo_tokenizer, 12))
        ]
        other = [
            server.generate(f"g{i}", prompt_ids=p, sampling_params={**SAMPLE, "temperature": 0})
            for i, p in enumerate(prompts(demo_tokenizer, 3))
        ]
        return await asyncio.gather(*same, *other)

    outputs = asyncio.run(scenario())
    assert sorted(counting.batches) == [(3, 0.0), (12, 1.0)]
    assert len(outputs) == 15
    for output in outputs:
        assert 1 <= len(output.token_ids) <= 8  # data.max_response_length
        assert len(output.log_probs) == len(output.token_ids)
        assert output.stop_reason == "completed" and output.extra_fields == {"global_steps": None}


def test_batches_are_capped_at_max_num_seqs(server, demo_tokenizer):
    counting = CountingEngine(server.engine)
    server.engine = counting
    server.max_batch_size = 4

    async def scenario():
        return await asyncio.gather(
            *[
                server.generate(str(i), prompt_ids=p, sampling_params=SAMPLE)
                for i, p in enumerate(prompts(demo_tokenizer, 10))
            ]
        )

    asyncio.run(scenario())
    assert [size for size, _ in counting.batches] == [4, 4, 2]


def test_engine_errors_reach_every_request_of_the_batch(server, demo_tokenizer):
    def broken(batch, settings):
        raise RuntimeError("engine exploded")

    server.engine.generate = broken

    async def scenario():
        return await asyncio.gather(
            *[
                server.generate(str(i), prompt_ids=p, sampling_params=SAMPLE)
                for i, p in enumerate(prompts(demo_tokenizer, 3))
            ],
            return_exceptions=True,
        )

    results = asyncio.run(scenario())
    assert [str(r) for r in results] == ["engine exploded"] * 3


def test_server_refuses_multimodal_and_unknown_sampling_parameters(server, demo_tokenizer):
    prompt = prompts(demo_tokenizer, 1)[0]
    with pytest.raises(NotImplementedError, match="text-only"):
        asyncio.run(server.generate("r", prompt_ids=prompt, sampling_params=SAMPLE, image_data=[object()]))
    with pytest.raises(NotImplementedError, match="audio_data"):
        asyncio.run(server.generate("r", prompt_ids=prompt, sampling_params=SAMPLE, audio_data=[1.0]))
    with pytest.raises(ValueError, match="'stop'"):
        asyncio.run(server.generate("r", prompt_ids=prompt, sampling_params={**SAMPLE, "stop": ["\n"]}))


def test_optional_request_fields_verl_sends_empty_are_accepted(server, demo_tokenizer):
    output = asyncio.run(
        server.generate(
            "r",
            prompt_ids=prompts(demo_tokenizer, 1)[0],
            sampling_params=SAMPLE,
            audio_data=None,
            priority=0,
            mm_processor_kwargs={},
        )
    )
    assert output.token_ids


class _RecordingLock(asyncio.Lock):
    """The server's model lock, counting acquire attempts (a generation batch parks here during a weight update)."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def acquire(self) -> bool:
        self.attempts += 1
        return await super().acquire()


def test_weight_update_blocks_generation_until_finished_and_sets_version(server, demo_tokenizer, monkeypatch):
    new_weights = list(build_model(demo_tokenizer, seed=5).state_dict().items())
    versions = []  # the weights version each engine batch ran under
    generate = server.engine.generate

    def recording(batch, settings, **kwargs):
        versions.append(server.global_steps)
        return generate(batch, settings, **kwargs)

    monkeypatch.setattr(server.engine, "generate", recording)

    async def scenario():
        lock = server._model_lock = _RecordingLock()
        await server.begin_weight_update()
        pending = asyncio.ensure_future(
            server.generate("r", prompt_ids=prompts(demo_tokenizer, 1)[0], sampling_params=SAMPLE)
        )
        # wait for an event, not for time: the request's batch reaching the lock the update holds
        for _ in range(10_000):
            if lock.attempts >= 2 or pending.done():
                break
            await asyncio.sleep(0.001)
        parked = lock.attempts == 2 and not pending.done() and versions == []
        await server.load_weights(new_weights)
        await server.finish_weight_update(global_steps=3)
        output = await pending
        return parked, output

    parked, output = asyncio.run(scenario())
    assert parked, "the generation did not wait on the weight update"
    assert versions == [3] and output.extra_fields["global_steps"] == 3  # generated once, with the new weights
    assert all(torch.equal(server.engine.model.state_dict()[name], tensor) for name, tensor in new_weights)


def test_stale_weight_update_raises_and_releases_generation(server, demo_tokenizer):
    new_weights = list(build_model(demo_tokenizer, seed=5).state_dict().items())

    async def scenario():
        await server.begin_weight_update()
        await server.load_weights(new_weights[:1])
        with pytest.raises(WeightUpdateError, match="stale"):
            await server.finish_weight_update(global_steps=1)
        return await server.generate("r", prompt_ids=prompts(demo_tokenizer, 1)[0], sampling_params=SAMPLE)

    assert asyncio.run(scenario()).token_ids


# ----------------------------------------------------------------------------------------- worker adapter


class _RemoteMethod:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def remote(self, *args, **kwargs):
        self.owner.calls.append(self.name)
        return getattr(self.owner.server, self.name)(*args, **kwargs)


class FakeServerHandle:
    """Stands in for the Ray actor handle: ``handle.method.remote(...)`` awaits the real server method."""

    def __init__(self, server):
        self.server = server
        self.calls = []

    def __getattr__(self, name):
        return _RemoteMethod(self, name)


@pytest.fixture
def adapter(verl_config, server, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    rollout = verl_config.actor_rollout_ref.rollout
    rollout.checkpoint_engine.update_weights_bucket_megabytes = 0  # every tensor is its own bucket
    instance = HFServerAdapter(rollout, verl_config.actor_rollout_ref.model, device_mesh=None)
    instance._server = FakeServerHandle(server)
    return instance


def test_adapter_streams_all_weights_in_buckets_and_sets_the_version(adapter, demo_tokenizer):
    weights = build_model(demo_tokenizer, seed=9).state_dict()
    asyncio.run(adapter.update_weights(iter(weights.items()), global_steps=7))
    calls = adapter._server.calls
    assert calls[0] == "begin_weight_update" and calls[-1] == "finish_weight_update"
    assert calls.count("load_weights") == len(weights)
    engine = adapter._server.server.engine
    assert all(torch.equal(engine.model.state_dict()[k], v) for k, v in weights.items())
    assert adapter._server.server.global_steps == 7


def test_adapter_aborts_the_update_when_the_weight_stream_fails(adapter, demo_tokenizer):
    def failing_stream():
        yield next(iter(build_model(demo_tokenizer, seed=9).state_dict().items()))
        raise RuntimeError("gather failed")

    with pytest.raises(RuntimeError, match="gather failed"):
        asyncio.run(adapter.update_weights(failing_stream()))
    assert adapter._server.calls[-1] == "abort_weight_update"
    assert not adapter._server.server._lock().locked()


def test_adapter_refuses_lora_and_delta_updates(adapter):
    with pytest.raises(NotImplementedError, match="LoRA"):
        asyncio.run(adapter.update_weights(iter([]), peft_config={"r": 8}))
    with pytest.raises(NotImplementedError, match="delta_flush"):
        asyncio.run(adapter.update_weights(iter([]), wire_format="delta_flush"))
