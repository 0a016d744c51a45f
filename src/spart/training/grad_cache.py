"""GradCache (Gao et al. 2021): contrastive batches larger than memory, with exactly the full-batch gradient.

A contrastive loss couples every query with every passage of the batch, so the batch cannot simply be split
into gradient-accumulation micro-batches. GradCache splits the *encoder* work instead:

1. encode every chunk without a graph (``no_grad``) and keep only the representations, recording each
   chunk's RNG state;
2. compute the loss on the concatenated, detached representations (``requires_grad`` leaves) and
   back-propagate it to them: this is cheap (``B x d`` tensors) and may include
   :func:`~spart.training.distributed.all_gather_with_grad`, so it combines with distributed training;
3. re-encode each chunk *with* a graph under its recorded RNG state, so dropout draws the same masks as in
   step 1, and back-propagate the cached representation gradient through it; parameter gradients accumulate
   chunk by chunk.

Peak activation memory is that of one chunk, whatever the batch size, at the price of a second forward
pass. Without step 3's RNG restore, dropout would make the re-run differ from the representations the loss
saw and the gradient would be wrong (GradCache's ``RandContext``).

Usage::

    loss = grad_cache_step(
        [(lambda x: model.embed(x, "query"), query_chunks), (lambda x: model.embed(x, "passage"), passage_chunks)],
        lambda q, p: loss_fn(q, p, positive_index),
    )
    optimizer.step()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch


def _cuda_devices(inputs: Any) -> list[int]:
    tensors = (
        inputs.values() if isinstance(inputs, Mapping) else (inputs if isinstance(inputs, (list, tuple)) else [inputs])
    )
    return sorted({t.device.index or 0 for t in tensors if isinstance(t, torch.Tensor) and t.is_cuda})


class RandomState:
    """The CPU (and CUDA, for the given devices) RNG state at construction; ``with`` replays from it.

    On exit the generators are put back to where they were before the ``with``, so replaying does not
    disturb the random stream of the rest of the step.
    """

    def __init__(self, cuda_devices: Sequence[int] = ()) -> None:
        self.devices = list(cuda_devices)
        self.cpu_state = torch.get_rng_state()
        self.cuda_states = [torch.cuda.get_rng_state(d) for d in self.devices]
        self._fork = None

    def __enter__(self) -> RandomState:
        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        for device, state in zip(self.devices, self.cuda_states):
            torch.cuda.set_rng_state(state, device)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._fork.__exit__(*exc)
        self._fork = None


def split_inputs(inputs: Mapping[str, torch.Tensor], chunk_size: int) -> list[dict[str, torch.Tensor]]:
    """Split a tokenised batch (dict of equal-length tensors) into chunks of ``chunk_size`` rows."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    names = list(inputs)
    pieces = [inputs[n].split(chunk_size, dim=0) for n in names]
    return [dict(zip(names, parts)) for parts in zip(*pieces)]


def grad_cache_step(
    groups: Sequence[tuple[Callable[[Any], torch.Tensor], Sequence[Any]]],
    loss_fn: Callable[..., torch.Tensor],
    loss_scale: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """One GradCache forward/backward; parameter ``.grad`` accumulates the full-batch gradient.

    :param groups: one ``(encode, chunks)`` pair per representation the loss takes (e.g. queries, passages);
        ``encode(chunk)`` returns a ``(rows, d)`` tensor (under whatever autocast the caller set).
    :param loss_fn: called with one concatenated representation tensor per group (float32 leaves).
    :param loss_scale: optional transform applied before backward (a ``GradScaler.scale`` for fp16).
    :returns: the loss, detached.
    """
    cached: list[list[torch.Tensor]] = []
    states: list[list[RandomState]] = []
    for encode, chunks in groups:
        if len(chunks) == 0:
            raise ValueError("a GradCache group has no chunks")
        reps, rngs = [], []
        for chunk in chunks:
            rngs.append(RandomState(_cuda_devices(chunk)))
            with torch.no_grad():
                reps.append(encode(chunk).float())
        cached.append(reps)
        states.append(rngs)

    leaves = [torch.cat(reps).detach().requires_grad_(True) for reps in cached]
    loss = loss_fn(*leaves)
    (loss_scale(loss) if loss_scale is not None else loss).backward()

    for (encode, chunks), reps, rngs, leaf in zip(groups, cached, states, leaves):
        if leaf.grad is None:  # this group does not influence the loss
            continue
        grads = leaf.grad.split([len(r) for r in reps])
        for chunk, rng, grad in zip(chunks, rngs, grads):
            with rng:
                out = encode(chunk)
            # Surrogate objective <out, grad>: its gradient w.r.t. the parameters is grad^T d out / d theta.
            torch.autograd.backward(out.float(), grad_tensors=grad)
    return loss.detach()
