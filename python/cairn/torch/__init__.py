"""PyTorch 2 helpers: ``AppState`` (model + optimizers through ``get_state_dict``/``set_state_dict``,
as DCP's recipe does), and ``manager()``, a :class:`cairn.CheckpointManager` whose rank and world
size come from torchrun's environment.

DTensor leaves (FSDP2, tensor parallelism) need nothing from here: ``CheckpointManager.save`` and
``restore`` store and fill them wherever they appear (see docs/python.md, "FSDP2 and DTensor").
This subpackage imports torch; the core ``cairn`` package never imports it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Optional, Sequence, Union

import torch

from ..errors import CairnError
from ..manager import CheckpointManager


class AppState:
    """A model and its optimizers as one state entry, like DCP's ``AppState(Stateful)`` recipe::

        mgr.save(step, {"app": cairn.torch.AppState(model, optimizer), "step": step})

    ``state_dict()`` is ``get_state_dict(model, optimizers, options=options)`` (FSDP2 gives DTensor
    pieces; optimizer state keyed by parameter names, with ``step`` and the param-group options);
    ``load_state_dict()`` is ``set_state_dict``. On restore Cairn fills the current state dict's
    tensors in place (each DTensor gets its box of the global tensor, whatever layout saved it) and
    then calls ``set_state_dict``.

    Everything that is not a sharded DTensor (``step`` tensors, param groups, an all-Replicate()
    DTensor, plain tensors of a DDP model) is the same on every rank, so the object is saved as
    mirrored state (``cairn_mirrored = True``: written once, split across ranks, restorable on any
    world size). Pass ``mirrored=False`` when ranks hold different plain tensors.

    ``options`` (``torch.distributed.checkpoint.state_dict.StateDictOptions``) is passed through.
    ``full_state_dict=True`` gives every rank the same full plain tensors: they are mirrored, so
    the save still writes each byte once. ``full_state_dict=True`` with ``cpu_offload=True`` leaves
    every rank but 0 with an empty state dict (PyTorch's documented behaviour), which a mirrored
    save cannot hold: refused with a CairnError.
    """

    def __init__(self, model: torch.nn.Module,
                 optimizers: Union[None, torch.optim.Optimizer, Iterable[torch.optim.Optimizer]] = None,
                 options: Any = None, mirrored: bool = True) -> None:
        if options is not None and getattr(options, "full_state_dict", False) and getattr(options, "cpu_offload", False):
            raise CairnError("cairn.torch.AppState: StateDictOptions(full_state_dict=True, cpu_offload=True) leaves "
                             "ranks other than 0 empty; use the default (sharded) state dict or full_state_dict alone")
        self.model = model
        if optimizers is None:
            self.optimizers: Sequence[torch.optim.Optimizer] = ()
        elif isinstance(optimizers, torch.optim.Optimizer):
            self.optimizers = (optimizers,)
        else:
            self.optimizers = tuple(optimizers)
        self.options = options
        self.cairn_mirrored = bool(mirrored)

    def _optim_arg(self) -> Any:
        return self.optimizers[0] if len(self.optimizers) == 1 else list(self.optimizers)

    def state_dict(self) -> Dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

        if not self.optimizers:
            return {"model": get_model_state_dict(self.model, options=self.options)}
        model_sd, optim_sd = get_state_dict(self.model, self._optim_arg(), options=self.options)
        return {"model": model_sd, "optim": optim_sd}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

        if not self.optimizers:
            set_model_state_dict(self.model, state_dict["model"], options=self.options)
            return
        set_state_dict(self.model, self._optim_arg(), model_state_dict=state_dict["model"],
                       optim_state_dict=state_dict["optim"], options=self.options)

    def __repr__(self) -> str:
        return f"cairn.torch.AppState({type(self.model).__name__}, {len(self.optimizers)} optimizer(s))"


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise CairnError(f"environment variable {name}={value!r} is not an int") from None


def init_process_group(backend: str = "gloo", timeout_s: float = 300.0) -> None:
    """``torch.distributed.init_process_group`` for a rank started by torchrun, rendezvousing
    under a per-attempt prefix of torchrun's store (``TORCHELASTIC_RESTART_COUNT``): torch 2.13's
    torchrun keeps its store across ``--max-restarts`` restarts, and restarted ranks could otherwise
    read the addresses the ranks of the failed attempt published and fail to connect. Outside
    torchrun: the plain ``init_process_group(backend)``."""
    import datetime

    import torch.distributed as dist

    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None:
        dist.init_process_group(backend)
        return
    rank, world = _env_int("RANK") or 0, _env_int("WORLD_SIZE") or 1
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent_store and rank == 0, timeout=timeout)
    dist.init_process_group(backend, store=dist.PrefixStore(f"cairn/attempt_{attempt}", store), rank=rank,
                            world_size=world, timeout=timeout)


def rank_and_world_size() -> "tuple[int, int]":
    """(rank, world size) of this process: the initialized default process group's, else
    torchrun's ``RANK``/``WORLD_SIZE``; (0, 1) when neither is there."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    return (0 if rank is None else rank), (1 if world is None else world)


def manager(address: Optional[str] = None, run_id: Optional[str] = None, **kwargs: Any) -> CheckpointManager:
    """A :class:`cairn.CheckpointManager` for a rank launched by torchrun (or any launcher that sets
    ``RANK``/``WORLD_SIZE``): rank and world size from the process group or the environment,
    ``address`` from ``CAIRN_COORDINATOR`` and ``run_id`` from ``CAIRN_RUN_ID`` (else
    ``TORCHELASTIC_RUN_ID``) when not given. Under torchrun ``handle_sigterm`` defaults to False:
    torchrun stops every rank of a failed attempt with SIGTERM and expects it to exit (pass
    ``handle_sigterm=True`` for an emergency save on SIGTERM instead). Other arguments go to the
    manager."""
    address = address or os.environ.get("CAIRN_COORDINATOR")
    if not address:
        raise CairnError("cairn.torch.manager: no coordinator address (pass address= or set CAIRN_COORDINATOR)")
    run_id = run_id or os.environ.get("CAIRN_RUN_ID") or os.environ.get("TORCHELASTIC_RUN_ID")
    if not run_id:
        raise CairnError("cairn.torch.manager: no run id (pass run_id= or set CAIRN_RUN_ID)")
    rank, world = rank_and_world_size()
    if "TORCHELASTIC_RESTART_COUNT" in os.environ:
        # torchrun stops the ranks of a failed attempt with SIGTERM and expects them to exit
        kwargs.setdefault("handle_sigterm", False)
    kwargs.setdefault("rank", rank)
    kwargs.setdefault("world_size", world)
    return CheckpointManager(address, run_id, **kwargs)


__all__ = ["AppState", "manager", "init_process_group", "rank_and_world_size"]
