"""What every trainer shares: optimiser and schedule, precision, the data order, the optimiser step, exact
checkpoints, model exports and the training loop. A trainer supplies one step and its own metrics.

Data order is a pure function of ``(seed, step)``: epoch ``e`` is a permutation drawn from ``(seed, e)``,
and ``step`` fixes the epoch and the position in it (the last incomplete batch of an epoch is dropped). A
checkpoint therefore only needs the step, plus model, optimiser, scheduler, scaler and every rank's RNG (and
whatever a trainer adds through :meth:`Trainer.extra_state`), to resume exactly.

Collectives go through :func:`~spart.training.distributed.guarded`, so a rank that died ends the job with a
:class:`~spart.training.distributed.CollectiveError` naming the operation instead of a hang.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from spart.encoders import DualEncoder
from spart.encoders.precision import autocast, resolve_precision
from spart.training.checkpoint import Checkpointer, capture_rng_state, restore_rng_state
from spart.training.config import TrainingConfig, save_config
from spart.training.distributed import (
    DistributedContext,
    all_reduce_mean,
    broadcast_parameters,
    gather_objects,
    guarded,
)
from spart.training.metrics_log import MetricsLog, step_progress
from spart.training.schedule import build_adamw, linear_warmup_decay

logger = logging.getLogger(__name__)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The item order of ``epoch``: a permutation that depends only on ``(seed, epoch)``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class Trainer:
    """The loop around a trainer's step (subclasses: ``ContrastiveTrainer``, ``ARTTrainer``).

    A subclass implements :meth:`train_step` (returns at least ``{"loss": ...}``, the loss averaged over
    ranks) and :meth:`metrics`; it may add checkpoint state (:meth:`extra_state` / :meth:`load_extra_state`),
    work before the first step (:meth:`before_training`) and after each step (:meth:`after_step`).

    :param config: the run's options (:class:`~spart.training.config.TrainingConfig` or a subclass).
    :param encoder: the model (in fp32; steps autocast).
    :param n_items: number of training items (examples, questions) an epoch permutes.
    :param ctx: the distributed context (a world of one by default).
    :param on_step_end: called with the step number after each completed step (tests use it to simulate a
        crash; evaluation callbacks can use it too).
    :param items: what the items are called in error messages.
    """

    metrics_fields: tuple[str, ...] = ("step", "epoch", "loss", "lr", "elapsed_s")
    progress_desc = "training"
    resume_note = "the data and RNG streams would not continue exactly"

    def __init__(
        self,
        config: TrainingConfig,
        encoder: DualEncoder,
        n_items: int,
        ctx: DistributedContext | None = None,
        on_step_end: Callable[[int], None] | None = None,
        items: str = "examples",
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.ctx = ctx or DistributedContext(device=encoder.device)
        self.on_step_end = on_step_end
        if config.batch_size % self.ctx.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by world size {self.ctx.world_size}")
        if n_items < config.batch_size:
            raise ValueError(f"{n_items} {items}, fewer than one batch of {config.batch_size}")
        self.n_items = n_items
        self.local_batch = config.batch_size // self.ctx.world_size
        self.steps_per_epoch = n_items // config.batch_size
        self.precision = resolve_precision(config.precision, self.ctx.device)
        self.optimizer = build_adamw(encoder, config.lr, config.weight_decay, config.adam_betas, config.adam_eps)
        self.scheduler = linear_warmup_decay(self.optimizer, config.resolved_warmup_steps(), config.max_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.checkpointer = Checkpointer(config.output_dir, keep=config.keep_checkpoints)
        self.step = 0
        self._order: tuple[int, torch.Tensor] | None = None

    @classmethod
    def build(cls, config: TrainingConfig, encoder: DualEncoder, dataset: Any, ctx: DistributedContext) -> Trainer:
        """The trainer of a ``spart train`` run (:func:`spart.training.registry.run_training`): ``dataset`` is
        what the method's dataset factory returned. Subclasses whose constructor takes more override it."""
        return cls(config, encoder, dataset, ctx)

    # ------------------------------------------------------------------ precision
    def autocast(self):
        return autocast(self.precision, self.ctx.device)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to call ``backward`` on (scaled under fp16)."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def embed_fn(self, role: str):
        """``inputs -> embeddings`` of the encoder's ``role`` tower under this run's autocast (GradCache's
        per-chunk encode function)."""

        def embed(inputs):
            with self.autocast():
                return self.encoder.embed(inputs, role)

        return embed

    # ------------------------------------------------------------------ data
    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch index within the epoch)`` of global step ``step``."""
        return divmod(step, self.steps_per_epoch)

    def local_indices(self, step: int) -> list[int]:
        """The item indices this rank trains on at global step ``step``."""
        epoch, index = self.position(step)
        if self._order is None or self._order[0] != epoch:
            self.start_epoch(epoch)
            self._order = (epoch, epoch_order(self.n_items, self.config.seed, epoch))
        start = index * self.config.batch_size + self.ctx.rank * self.local_batch
        return [int(i) for i in self._order[1][start : start + self.local_batch]]

    def start_epoch(self, epoch: int) -> None:
        """Called before the first batch of each epoch is read (hook)."""

    # ------------------------------------------------------------------ one step
    def train_step(self, step: int) -> dict[str, float]:
        raise NotImplementedError

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

    def optimizer_step(self) -> None:
        """Clip the (rank-averaged) gradients, step the optimiser and the schedule, clear the gradients."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable_parameters(), self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def mean_over_ranks(self, value: float) -> float:
        return guarded("average loss", all_reduce_mean, value, self.ctx.device)

    def barrier(self, operation: str) -> None:
        if self.ctx.enabled:
            import torch.distributed as dist

            guarded(operation, dist.barrier)

    # ------------------------------------------------------------------ state
    def extra_state(self) -> dict[str, Any]:
        """More checkpoint state (collective: every rank calls it)."""
        return {}

    def check_state(self, state: Mapping[str, Any]) -> None:
        """Refuse a checkpoint that cannot continue this run exactly (and warn where it continues validly but not
        bit for bit)."""
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(
                f"checkpoint was written by {state['world_size']} ranks, resuming with {self.ctx.world_size}: "
                f"{self.resume_note}"
            )
        now = getattr(self.config, "fast_dropout", None)
        then = state.get("config", {}).get("fast_dropout", False)  # checkpoints from before the option: torch's
        if now is not None and now != then and self.ctx.device.type == "cpu":
            logger.warning(
                "the checkpoint was trained with %s dropout, this run uses %s dropout: training continues with the "
                "same dropout distribution but other masks, so it is not bit-identical to an uninterrupted run "
                "(set fast_dropout: %s to resume exactly)",
                "spart's" if then else "torch's",
                "spart's" if now else "torch's",
                str(then).lower(),
            )

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved."""

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs. Collective (every rank's RNG state is gathered)."""
        every = gather_objects("gather RNG states", capture_rng_state())
        return {
            "model": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": every,
            "world_size": self.ctx.world_size,
            "config": self.config.model_dump(mode="json"),
            **self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.check_state(state)
        self.encoder.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.load_extra_state(state)
        restore_rng_state(state["rng"][self.ctx.rank])
        self.step = int(state["step"])

    def save_checkpoint(self) -> None:
        state = self.state_dict()  # collective: every rank takes part
        if self.ctx.is_main:
            path = self.checkpointer.save(self.step, state)
            logger.info("checkpoint %s", path)
        self.barrier("checkpoint")

    def resume(self) -> bool:
        """Load the newest checkpoint of ``output_dir`` if there is one; returns whether it did."""
        path = self.checkpointer.latest_path()
        if path is None:
            return False
        # The optimiser moves its state to the parameters' device on load; CPU first keeps GPU memory free.
        self.load_state_dict(self.checkpointer.load(path, map_location="cpu"))
        logger.info("resumed from %s at step %d", path, self.step)
        return True

    # ------------------------------------------------------------------ models
    def save_model(self, directory: Path) -> None:
        if self.ctx.is_main:
            self.encoder.eval()
            self.encoder.save(directory)
        self.barrier(f"save {directory.name}")

    def export(self, step: int) -> None:
        self.save_model(Path(self.config.output_dir) / "models" / f"step-{step:08d}")

    # ------------------------------------------------------------------ the loop
    def before_training(self, resumed: bool) -> None:
        """Work before the first step (hook; ART builds its evidence index here)."""

    def after_step(self) -> dict[str, float]:
        """Work after each optimiser step (hook); returns timings to add to the logging window."""
        return {}

    def metrics(self, window: dict[str, float], steps: int, seconds: float) -> dict[str, Any]:
        """The trainer's own metrics over a logging window of ``steps`` steps (sums in ``window``)."""
        return {}

    def summary(self, row: Mapping[str, Any]) -> str:
        """One logged row in words, for the log and the progress bar."""
        return f"loss {row['loss']:.4f} lr {row['lr']:.3g}"

    def over_budget(self, started: float) -> bool:
        """Whether ``config.time_budget_s`` is spent; every rank gets the same answer (any rank over = all stop)."""
        budget = self.config.time_budget_s
        if budget is None:
            return False
        over = float(time.perf_counter() - started > budget)
        return self.mean_over_ranks(over) > 0  # a plain float in a world of one

    def train(self, resume: bool = False) -> Path:
        """Train to ``max_steps`` (or until ``time_budget_s`` is spent); returns the directory of the final model
        (``output_dir/final``). ``self.stopped_by_budget`` says whether the budget ended the run."""
        config = self.config
        out = Path(config.output_dir)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        guarded("broadcast initial weights", broadcast_parameters, self.encoder)
        resumed = self.resume() if resume else False
        if self.ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(config, out / "config.yaml")
        self.before_training(resumed)
        if not resumed:
            # Different dropout streams per rank, reproducible from the seed.
            torch.manual_seed(config.seed + 7919 * self.ctx.rank)
        log = MetricsLog(out / "metrics.csv", self.metrics_fields, self.step) if self.ctx.is_main else None
        if self.step == 0 and 0 in config.export_steps:
            self.export(0)
        progress = step_progress(config.max_steps, self.step, config.progress and self.ctx.is_main, self.progress_desc)
        window: dict[str, float] = {}
        window_steps, window_start, t0 = 0, time.perf_counter(), time.perf_counter()
        self.stopped_by_budget = False
        try:
            while self.step < config.max_steps:
                result = self.train_step(self.step)
                if not math.isfinite(result["loss"]):
                    raise FloatingPointError(f"loss became {result['loss']} at step {self.step}")
                self.step += 1
                for key, value in {**result, **self.after_step()}.items():
                    window[key] = window.get(key, 0.0) + value
                window_steps += 1
                progress.update(1)
                if self.step % config.log_every == 0 or self.step == config.max_steps:
                    now = time.perf_counter()
                    row = {
                        "step": self.step,
                        "epoch": self.position(self.step - 1)[0],
                        "loss": window["loss"] / window_steps,
                        "lr": self.scheduler.get_last_lr()[0],
                        **self.metrics(window, window_steps, now - window_start),
                        "elapsed_s": now - t0,
                    }
                    summary = self.summary(row)
                    progress.set_postfix_str(summary, refresh=False)
                    if log is not None:
                        log.write(row)
                        logger.info("step %d %s", self.step, summary)
                    window, window_steps, window_start = {}, 0, now
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.step in config.export_steps:
                    self.export(self.step)
                if self.on_step_end is not None:
                    self.on_step_end(self.step)
                if self.step < config.max_steps and self.over_budget(t0):
                    self.stopped_by_budget = True
                    logger.warning(
                        "time budget of %.0f s spent: stopping at step %d of %d (resume to continue)",
                        config.time_budget_s,
                        self.step,
                        config.max_steps,
                    )
                    if not config.checkpoint_every or self.step % config.checkpoint_every:
                        self.save_checkpoint()  # before the extra export, which may draw random numbers
                    if self.step not in config.export_steps:
                        self.export(self.step)
                    break
        finally:
            progress.close()
        if not self.stopped_by_budget and (not config.checkpoint_every or self.step % config.checkpoint_every):
            self.save_checkpoint()
        final = out / "final"
        self.save_model(final)
        if self.ctx.is_main:
            logger.info("final model saved to %s", final)
        return final
