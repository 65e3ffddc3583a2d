"""Training on several processes: ``torchrun`` sets the environment, this module turns it into a context.

    ddlearn train digits                                   # one process, config.device() (or --device)
    torchrun --nproc_per_node 4 -m ddlearn.cli train digits --out runs        # four GPUs of one machine
    torchrun --nnodes 2 --node_rank R --nproc_per_node 4 \\
             --rdzv_backend c10d --rdzv_endpoint HOST:29500 -m ddlearn.cli train digits --out runs

``torchrun`` starts one process a device and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each; :func:`setup`
reads them, joins the process group (NCCL on CUDA, gloo on the CPU) and puts
the process on its own GPU (``cuda:LOCAL_RANK``). Without those variables
(or with ``WORLD_SIZE=1``) it is a single process and nothing changes.

How :func:`ddlearn.train.train` uses the context (``world`` processes):

* every process builds the same net from the seed, and DistributedDataParallel
  averages the gradients, so every process holds the same weights, EMA and
  optimiser state after each step;
* the data are split deterministically from the seed: one generator, identical
  on every process, draws ``world x batch_size`` indices a step and process
  ``rank`` takes the ``rank``-th block of ``batch_size``; the same generator
  draws one seed a process a step for that process's timesteps and noise. The
  training state is therefore the same on every process, so process 0 alone
  saves it, and a resumed run continues exactly (for the same ``world``);
* ``recipe.batch_size`` is per process: the step's batch is ``world x
  batch_size`` (the learning rate is the recipe's);
* process 0 alone shows progress, writes the training state, the checkpoint,
  the sidecar and the logs, and runs the evaluations.

With one process none of this runs: the loop is the single-process loop, and
a CPU run gives the same weights, bit for bit, as before this module existed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world`` processes (``local_rank`` on its machine), on ``device``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    started_here: bool = False   # setup() joined the process group (teardown() leaves it)

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _env_int(name: str) -> int:
    raw = os.environ[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer (set by torchrun), got {raw!r}") from None
    if value < 0:
        raise ValueError(f"environment variable {name} must be >= 0, got {value}")
    return value


def launched() -> bool:
    """True when this process was started by ``torchrun`` (or the like) with more than one process."""
    return "WORLD_SIZE" in os.environ and _env_int("WORLD_SIZE") > 1


def current(device: torch.device | None = None) -> Context:
    """The context of a process group that is already joined (or a single process)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else dist.get_rank()
        return Context(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local, device=device)
    return Context(device=device)


def setup(device: torch.device) -> Context:
    """Join the process group ``torchrun`` describes (if any) and return the context.

    ``device`` is the device kind asked for (``cuda`` becomes ``cuda:LOCAL_RANK``).
    A process group that is already joined is used as it is.
    """
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, got {type(device).__name__}")
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return current(_local_device(device, current().local_rank))
    if not launched():
        return Context(device=device)
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set: start the "
                         f"processes with torchrun (see ddlearn.distributed)")
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if rank >= world:
        raise ValueError(f"RANK={rank} must be below WORLD_SIZE={world}")
    if not dist.is_available():
        raise ValueError("this torch build has no torch.distributed; run one process")
    dev = _local_device(device, local)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Context(rank=rank, world=world, local_rank=local, device=dev, started_here=True)


def _local_device(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cuda" and device.index is None:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s): start at most that many processes a machine (--nproc_per_node)")
        return torch.device("cuda", local_rank)
    return device


def teardown(ctx: Context) -> None:
    """Leave the process group if :func:`setup` joined it."""
    if ctx.started_here and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def broadcast(obj, ctx: Context):
    """``obj`` of process 0, on every process (pickled through the process group; for small things)."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.is_main else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def agree(fn, ctx: Context):
    """Run ``fn()`` on process 0 and give its result to every process; an exception there is raised on all
    of them (same type and message), so no process goes on alone into a collective that would wait forever."""
    if not ctx.distributed:
        return fn()
    outcome = None
    if ctx.is_main:
        try:
            outcome = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - passed on to every process
            outcome = ("error", exc)
    kind, value = broadcast(outcome, ctx)
    if kind == "error":
        raise value
    return value


def all_mean(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The mean of ``values`` over processes (a CPU float64 tensor in, the same out)."""
    if not ctx.distributed:
        return values
    # gloo reduces CPU tensors; NCCL needs them on the process's GPU
    t = values.to(ctx.device) if ctx.device is not None and ctx.device.type == "cuda" else values.clone()
    torch.distributed.all_reduce(t)
    return t.cpu() / ctx.world


def shard(indices: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Process ``rank``'s block of a step's ``world x batch`` indices."""
    if indices.shape[0] % ctx.world:
        raise ValueError(f"indices: {indices.shape[0]} cannot be split evenly over {ctx.world} processes")
    b = indices.shape[0] // ctx.world
    return indices[ctx.rank * b:(ctx.rank + 1) * b]


def wrap(net: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """``net`` for the training step: DistributedDataParallel over the process group (attributes such as
    ``null_class`` or ``encode`` still reach ``net``), or ``net`` itself for a single process."""
    if not ctx.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device is not None and ctx.device.type == "cuda" else None
    return _Replicated(DistributedDataParallel(net, device_ids=ids))


class _Replicated(torch.nn.Module):
    """Calls go through DistributedDataParallel (which averages the gradients); other attributes reach the net."""

    def __init__(self, ddp):
        super().__init__()
        self.ddp = ddp

    def forward(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.ddp.module, name)


__all__ = ["Context", "setup", "teardown", "current", "launched", "broadcast", "agree", "all_mean", "shard", "wrap"]
