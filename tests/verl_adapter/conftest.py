"""Fixtures for fast tests of CuresTrainer's hooks on real verl objects (no Ray, no workers, no model).

* ``trainer_assets``: the demo's tiny assets (16 train, 4 val prompts, random model), built once per session;
* ``make_trainer``: a real :class:`~cures_verl.verl_adapter.trainer.CuresTrainer` from the composed config, its
  tokenizer, datasets and dataloader initialised, as verl's ``fit()`` would have them before the first step;
* ``kv_store``: an in-memory TransferQueue (``kv_batch_get`` / ``kv_batch_put``, key by key) in place of the
  client both verl's trainer and ours call, plus helpers that put a step's rollouts into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def trainer_assets(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("transformers")
    from cures_verl.experiments.trainer import build_demo_assets

    return build_demo_assets(
        tmp_path_factory.mktemp("trainer_assets"), num_prompts=16, num_val_prompts=4, warm_start_steps=0
    )


@pytest.fixture
def make_trainer(trainer_assets):
    """``make_trainer(tmp_path, *overrides)``: 16 prompts, 8 per step, rollout.n=4, 10 steps, continuous schedule
    with a 2-step cold start (2 rollouts each), the step dump under ``tmp_path / "cures"``."""
    pytest.importorskip("verl")
    from hydra import compose, initialize_config_module

    from cures_verl.experiments.trainer import demo_overrides
    from cures_verl.verl_adapter.hydra_config import register_resolvers
    from cures_verl.verl_adapter.trainer import CuresTrainer

    def build(tmp_path: Path, *extra: str) -> CuresTrainer:
        overrides = demo_overrides(
            trainer_assets,
            total_training_steps=10,
            train_batch_size=8,
            rollout_n=4,
            ppo_mini_batch_size=8,
            shuffle=False,
        )
        register_resolvers()
        with initialize_config_module(config_module="cures_verl.verl_adapter.config", version_base=None):
            config = compose(
                config_name="cures_trainer",
                overrides=[
                    "profile=cpu",
                    *overrides,
                    "cures.schedule.mode=continuous",
                    "cures.schedule.cold_start_rollouts=2",
                    f"cures.dump_dir={tmp_path / 'cures'}",
                    f"trainer.default_local_dir={tmp_path / 'ckpt'}",
                    *extra,
                ],
            )
        trainer = CuresTrainer(config)
        trainer._init_tokenizer()
        trainer._init_dataloader()
        return trainer

    return build


class KVStore:
    """TransferQueue's key-value calls in memory: each key holds its own fields, as TransferQueue's storage does;
    a get returns the rows of the keys asked for, in that order (jagged per-token fields as a jagged nested
    tensor, other fields as a list), a put writes row i of every field to key i."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.tags: dict[tuple[str, str], dict[str, Any]] = {}
        #: the fields each kv_batch_get asked for, in order
        self.reads: list[list[str]] = []

    def kv_batch_put(self, keys: list[str], partition_id: str, fields: Any = None, tags: Any = None) -> Any:
        import torch
        from transfer_queue import KVBatchMeta

        for name in [] if fields is None else list(fields.keys()):
            value = fields[name]
            if isinstance(value, torch.Tensor):
                rows = list(value.unbind())
            else:
                rows = value.tolist() if hasattr(value, "tolist") else list(value)
            if len(rows) != len(keys):
                raise ValueError(f"field {name} has {len(rows)} rows for {len(keys)} keys")
            for key, row in zip(keys, rows, strict=True):
                self.rows.setdefault((partition_id, key), {})[name] = row
        for key, tag in zip(keys, tags or [{}] * len(keys), strict=True):
            self.tags.setdefault((partition_id, key), {}).update(tag)
        return KVBatchMeta(
            keys=list(keys),
            tags=[dict(self.tags[(partition_id, key)]) for key in keys],
            partition_id=partition_id,
            fields=sorted(self.rows.get((partition_id, keys[0]), {})) if keys else [],
        )

    def kv_batch_get(self, keys: list[str], partition_id: str, select_fields: list[str] | None = None) -> Any:
        import torch
        from verl.utils import tensordict_utils as tu

        rows = [self.rows[(partition_id, key)] for key in keys]
        self.reads.append(list(select_fields or []))
        names = [name for name in (select_fields or list(rows[0])) if name in rows[0]]
        out: dict[str, Any] = {}
        for name in names:
            values = [row[name] for row in rows]
            if isinstance(values[0], torch.Tensor):
                out[name] = torch.nested.as_nested_tensor([v.clone() for v in values], layout=torch.jagged)
            else:
                out[name] = list(values)
        return tu.get_tensordict(out)

    def put_rollouts(
        self,
        uids: list[str],
        counts: list[int],
        rewards: list[float],
        lengths: list[int],
        *,
        extra_fields: list[dict[str, Any]] | None = None,
        padding: bool = False,
        partition_id: str = "train",
    ) -> Any:
        """Store a step's rollouts as verl's agent loop does: prompt i's k-th rollout under key ``{uid}_{k}_0`` (one
        session per rollout), ``response_mask`` and ``rm_scores`` (the reward on the last response token) as jagged
        rows of ``lengths`` tokens; ``padding`` tags them as verl's padding rows (``is_padding``). Returns their
        KVBatchMeta."""
        import torch
        from verl.utils import tensordict_utils as tu

        keys = [f"{uid}_{k}_0" for uid, n in zip(uids, counts, strict=True) for k in range(n)]
        if not (len(keys) == len(rewards) == len(lengths)):
            raise ValueError("one reward and one length per rollout")
        scores = []
        for reward, length in zip(rewards, lengths, strict=True):
            row = torch.zeros(length)
            row[-1] = reward
            scores.append(row)
        fields: dict[str, Any] = {
            "uid": [key.rsplit("_", 2)[0] for key in keys],
            "response_mask": torch.nested.as_nested_tensor([torch.ones(n) for n in lengths], layout=torch.jagged),
            "rm_scores": torch.nested.as_nested_tensor(scores, layout=torch.jagged),
            "extra_fields": extra_fields if extra_fields is not None else [{} for _ in keys],
        }
        tags = [{"is_padding": True} if padding else {} for _ in keys]
        return self.kv_batch_put(keys=keys, partition_id=partition_id, fields=tu.get_tensordict(fields), tags=tags)

    def batch(self, keys: list[str], partition_id: str = "train") -> Any:
        """The KVBatchMeta of ``keys`` (what verl passes from one step stage to the next)."""
        from transfer_queue import KVBatchMeta

        return KVBatchMeta(
            keys=list(keys), tags=[dict(self.tags[(partition_id, k)]) for k in keys], partition_id=partition_id
        )

    def run_step(self, trainer: Any, rewards_of: Any, *, counts: Any = None, extra_fields: Any = None) -> Any:
        """One step of ``trainer``'s hooks as verl's ``fit()`` runs them: fetch the planned batch, store its rollouts
        (``counts`` per prompt, default the plan's; 2 tokens each; rewards ``rewards_of(prompt of each rollout)``),
        then the advantage and the observe hooks. Returns ``(plan, batch, meta, metrics)``."""
        import numpy as np

        trainer.global_steps += 1
        batch = trainer._fetch_one_gen_batch()
        plan = trainer._step_plan
        counts = plan.rollouts if counts is None else np.asarray(counts)
        prompts = np.repeat(plan.prompt_indices, counts)
        uids = [str(uid) for uid in batch["uid"]]
        rewards = np.asarray(rewards_of(prompts), dtype=float).tolist()
        meta = self.put_rollouts(uids, counts.tolist(), rewards, [2] * prompts.size, extra_fields=extra_fields)
        metrics: dict[str, float] = {}
        meta = trainer._compute_advantage(meta, metrics)
        metrics.update(trainer._observe(meta))
        return plan, batch, meta, metrics

    def field(self, keys: list[str], name: str, partition_id: str = "train") -> list[Any]:
        """Field ``name`` of each key, as stored."""
        return [self.rows[(partition_id, key)][name] for key in keys]


@pytest.fixture
def kv_store(monkeypatch):
    """A :class:`KVStore` standing in for the TransferQueue client in verl's trainer and ours."""
    pytest.importorskip("verl")
    from verl.trainer.ppo.v1 import trainer_base

    from cures_verl.verl_adapter import trainer as trainer_module

    store = KVStore()
    monkeypatch.setattr(trainer_base, "tq", store)
    monkeypatch.setattr(trainer_module, "tq", store)
    return store
