"""Pre-flight check of what a verl config will ask Ray for, so a misconfigured run fails instead of hanging.

Ray never fails an actor or placement group it cannot place: it waits. verl then blocks forever in
``ray.get(...)`` with no error. Measured: V1 with 8 TransferQueue storage units on 8 logical CPUs hangs in
``transfer_queue/storage/bootstrap/simple_storage_bootstrap.py:85``; placement groups of ``{CPU: 3, GPU: 1}``
bundles with too few logical CPUs hang in ``verl/single_controller/ray/base.py:160``.
:func:`check_ray_resources` derives the demand from the config before Ray starts and raises naming the keys to
change.

Resource formula (verl 0.9.1, read from the code cited):

* **Resource pools**: every pool is ``nnodes`` STRICT_PACK placement groups of ``n_gpus_per_node`` bundles
  ``{CPU: 3, GPU: 1}`` (``max_colocate_count=3``, ``single_controller/ray/base.py:146-148,189``). Pools:
  ``global_pool`` = ``trainer.n_gpus_per_node x trainer.nnodes``
  (``trainer/ppo/v1/trainer_base.py:818-820``); ``reward_pool`` when ``reward.reward_model.enable_resource_pool``
  (:823-831); ``teacher_pool`` when ``distillation.enabled`` (:838-846).
* **TransferQueue** (V1 trainer, which always enables it, ``trainer/main_ppo.py``): the controller holds 1 CPU
  (``transfer_queue/controller.py:943``) and each of ``transfer_queue.backend.SimpleStorage.
  num_data_storage_units`` storage units holds 1 CPU (``transfer_queue/storage/simple_storage.py:722``).
* **Remote reward manager** (``reward.reward_manager.name=remote``): each of the ``reward.num_workers``
  reward-loop workers starts ``reward.num_workers`` compute workers of 1 CPU each
  (``experimental/reward_loop/reward_manager/remote.py:26,56-68``).
* **Actors without a CPU reservation** (TaskRunner, agent-loop and reward-loop workers, the load balancer,
  the hf rollout servers) hold no CPU once placed; Ray only needs the node to have CPUs at all.

    required_cpus = 3 * sum(pool GPUs) + [1 + num_data_storage_units if V1] + [num_workers**2 if remote]
    required_gpus = sum(pool GPUs)

Measured with CPU mode's profile (1 rank, 1 storage unit, V1): ``num_cpus=5`` runs, ``num_cpus=4`` hangs in
placement-group creation until killed (200 s, no error) -- the formula is tight.

The available amounts are ``ray_kwargs.ray_init.num_cpus`` / ``num_gpus`` (Ray's own detection when
unset: ``os.cpu_count()`` CPUs, and no GPU on a CPU machine). They are *logical*: CPU mode over-subscribes
the cores on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RayResourceDemand", "RayResourceError", "check_ray_resources", "ray_resource_demand"]

CPUS_PER_BUNDLE = 3


class RayResourceError(ValueError):
    """The config asks Ray for more than it will have: the run would hang."""


@dataclass(frozen=True)
class RayResourceDemand:
    """What a verl config reserves in Ray, by component, and what Ray will offer."""

    cpus_by_component: dict[str, float] = field(default_factory=dict)
    """Logical CPUs held by each component."""

    gpus_by_pool: dict[str, int] = field(default_factory=dict)
    """Logical GPUs held by each resource pool."""

    available_cpus: float = 0.0
    """``ray_kwargs.ray_init.num_cpus`` (or ``os.cpu_count()`` when unset)."""

    available_gpus: float = 0.0
    """``ray_kwargs.ray_init.num_gpus`` (0 when unset: CPU mode has no real GPU)."""

    @property
    def required_cpus(self) -> float:
        """Sum of :attr:`cpus_by_component`."""
        return float(sum(self.cpus_by_component.values()))

    @property
    def required_gpus(self) -> int:
        """Sum of :attr:`gpus_by_pool`."""
        return int(sum(self.gpus_by_pool.values()))


def _select(config: Any, key: str, default: Any = None) -> Any:
    node: Any = config
    for part in key.split("."):
        if node is None:
            return default
        if isinstance(node, Mapping):
            node = node.get(part)
        else:
            node = getattr(node, part, None)
    return default if node is None else node


def ray_resource_demand(config: Any) -> RayResourceDemand:
    """Compute what ``config`` will reserve in Ray (see the module docstring for the formula).

    Args:
        config: A composed verl config (``DictConfig`` or nested mappings).

    Returns:
        The demand and the configured availability.
    """
    cpus: dict[str, float] = {}
    gpus: dict[str, int] = {}

    def add_pool(name: str, gpus_per_node: int, nnodes: int) -> None:
        gpus[name] = int(gpus_per_node) * int(nnodes)
        cpus[f"{name} placement groups ({gpus[name]} x {CPUS_PER_BUNDLE} CPU)"] = CPUS_PER_BUNDLE * gpus[name]

    add_pool("global_pool", _select(config, "trainer.n_gpus_per_node", 8), _select(config, "trainer.nnodes", 1))
    if _select(config, "reward.reward_model.enable_resource_pool", False):
        add_pool(
            "reward_pool",
            _select(config, "reward.reward_model.n_gpus_per_node", 0),
            _select(config, "reward.reward_model.nnodes", 0),
        )
    if _select(config, "distillation.enabled", False):
        add_pool(
            "teacher_pool",
            _select(config, "distillation.n_gpus_per_node", 0),
            _select(config, "distillation.nnodes", 0),
        )
    if _select(config, "trainer.use_v1", True) or _select(config, "transfer_queue.enable", False):
        cpus["TransferQueue controller"] = 1
        if _select(config, "transfer_queue.backend.storage_backend", "SimpleStorage") == "SimpleStorage":
            units = int(_select(config, "transfer_queue.backend.SimpleStorage.num_data_storage_units", 8))
            cpus[f"TransferQueue storage units ({units} x 1 CPU)"] = units
    if _select(config, "reward.reward_manager.name", "naive") == "remote":
        workers = int(_select(config, "reward.num_workers", 8))
        cpus[f"remote reward compute workers ({workers} x {workers} x 1 CPU)"] = workers * workers

    available_cpus = _select(config, "ray_kwargs.ray_init.num_cpus")
    available_gpus = _select(config, "ray_kwargs.ray_init.num_gpus", 0)
    return RayResourceDemand(
        cpus_by_component=cpus,
        gpus_by_pool=gpus,
        available_cpus=float(available_cpus if available_cpus is not None else (os.cpu_count() or 1)),
        available_gpus=float(available_gpus),
    )


def check_ray_resources(config: Any) -> RayResourceDemand:
    """Raise if Ray cannot place everything ``config`` asks for; else return the demand.

    Args:
        config: A composed verl config.

    Returns:
        The :class:`RayResourceDemand`, for logging.

    Raises:
        RayResourceError: If logical CPUs or GPUs are short; the message lists the demand by component and the
            keys to change.

    Example:
        >>> config = {"trainer": {"n_gpus_per_node": 1, "nnodes": 1, "use_v1": True},
        ...           "transfer_queue": {"backend": {"SimpleStorage": {"num_data_storage_units": 1}}},
        ...           "ray_kwargs": {"ray_init": {"num_cpus": 5, "num_gpus": 1}}}
        >>> check_ray_resources(config).required_cpus
        5.0
    """
    demand = ray_resource_demand(config)
    problems = []
    if demand.required_gpus > demand.available_gpus:
        problems.append(
            f"{demand.required_gpus} logical GPUs are needed ({demand.gpus_by_pool}) but Ray gets "
            f"{demand.available_gpus:g}: set ++ray_kwargs.ray_init.num_gpus={demand.required_gpus} or lower "
            "trainer.n_gpus_per_node"
        )
    if demand.required_cpus > demand.available_cpus:
        breakdown = ", ".join(f"{name}: {amount:g}" for name, amount in demand.cpus_by_component.items())
        problems.append(
            f"{demand.required_cpus:g} logical CPUs are needed ({breakdown}) but Ray gets {demand.available_cpus:g}: "
            f"set ray_kwargs.ray_init.num_cpus={int(demand.required_cpus)} (logical CPUs may exceed the cores), "
            "or lower transfer_queue.backend.SimpleStorage.num_data_storage_units / trainer.n_gpus_per_node"
        )
    if problems:
        raise RayResourceError(
            "this config would hang: Ray waits forever for actors it cannot place. " + " ".join(problems)
        )
    return demand
