"""The one training loop every miil package uses.

A package supplies the model, the loss (or a ``step_fn`` for losses that need more than logits, e.g. a KD
teacher), the datasets, a meter for validation, and a :class:`TrainConfig` (usually its paper recipe, a frozen
subclass). The engine adds what the original MIIL scripts each re-implemented: timm optimizer and scheduler
factories (plus the one-cycle policy), AMP (bf16 on CPU, fp16 with a grad scaler or bf16 on CUDA), timm EMA,
gradient clipping, validation of raw and EMA weights every epoch with keep-best, tqdm progress, JSONL metrics,
the resolved config in the run directory, crash-safe checkpoints every epoch with exact resume, and DDP when
launched by torchrun.

Exact resume: every epoch re-seeds all generators from ``(seed, epoch, rank)`` and the sampler shuffles with
``seed + epoch``, so an epoch's randomness does not depend on what ran before it; with model, optimizer,
scheduler, EMA and scaler restored, a resumed run follows the uninterrupted one step for step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3, dispatch_clip_grad
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from .. import distributed as du
from ..data.unreadable import Skipped, SkippingCollate
from ..evaluate import ShardSampler, autocast, evaluate, gather_skipped, precision_of, to_device, write_json
from ..io import atomic_torch_save, atomic_write_text, load_checkpoint, save_safetensors
from .config import TrainConfig
from .schedule import create_schedule
from .seed import seed_everything

__all__ = ["TrainConfig", "TrainResult", "Trainer", "load_run_weights"]

CHECKPOINT_FORMAT = 1


@dataclass
class TrainResult:
    out_dir: Path
    best_metric: float
    best_epoch: int
    best_source: str
    history: list[dict[str, Any]]
    skipped: list[Skipped] = field(default_factory=list)


def _default_eval_fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return model(batch[0]), batch[1]


# A test hook: kill every rank right after the checkpoint of this epoch (1-based) is committed, to prove exact resume.
_KILL_AFTER_EPOCH = "MIIL_TEST_KILL_AFTER_EPOCH"


class Trainer:
    """Train a model with a recipe; see the module docstring for what the loop does.

    Args:
        model: The model (unwrapped). It is moved to the run's device.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``; used by the default step and for validation loss.
        train_dataset: Map-style dataset of ``(inputs, targets, ...)`` samples; ``None`` samples are skipped.
        cfg: The run's config or paper recipe.
        val_dataset: Optional validation dataset, evaluated after every epoch.
        meter: Validation meter (``reset/update/compute``, e.g. ``MeanAPMeter``); without one, validation
            reports the loss and keep-best minimises it.
        step_fn: ``step_fn(model, batch) -> loss`` replacing the default ``loss_fn(model(x), y)`` step.
        eval_fn: ``eval_fn(model, batch) -> (outputs, targets)`` for validation.
        batch_transform: Applied to each training batch on the device before the step (e.g. timm Mixup).
        collate_fn: Collate for both loaders (unreadable samples are dropped before it).
        train_sampler: ``f(dataset, rank, world_size, seed) -> sampler`` with ``set_epoch``; default shuffles
            with ``DistributedSampler`` (also in a single process, so one and many processes see the same order).
        param_groups: Parameters or groups for the optimizer instead of the whole model.
        run_info: Extra JSON-ready facts stored with the config and every checkpoint (recipe name, classes...).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[..., torch.Tensor] | None,
        train_dataset: Dataset,
        cfg: TrainConfig,
        *,
        val_dataset: Dataset | None = None,
        meter: Any | None = None,
        step_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
        eval_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, torch.Tensor]] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
        collate_fn: Callable | None = None,
        train_sampler: Callable[[Dataset, int, int, int], Sampler] | None = None,
        param_groups: Sequence[Any] | None = None,
        run_info: dict[str, Any] | None = None,
    ):
        if loss_fn is None and step_fn is None:
            raise ValueError("Trainer needs a loss_fn or a step_fn")
        if cfg.eval_mode not in ("max", "min"):
            raise ValueError(f"eval_mode must be 'max' or 'min', got {cfg.eval_mode!r}")
        self.cfg = cfg
        self.device = du.init_distributed(cfg.device)
        self.rank, self.world = du.get_rank(), du.get_world_size()
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.step_fn = step_fn
        self.eval_fn = eval_fn or _default_eval_fn
        self.batch_transform = batch_transform
        self.meter = meter
        self.run_info = dict(run_info or {})
        self.out_dir = Path(cfg.out_dir)

        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        make_sampler = train_sampler or (
            lambda ds, rank, world, seed: DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        )
        self.sampler = make_sampler(train_dataset, self.rank, self.world, cfg.seed)
        loader_kw = dict(
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            collate_fn=SkippingCollate(collate_fn),
            persistent_workers=cfg.num_workers > 0,
        )
        self.train_loader = DataLoader(
            train_dataset, batch_size=cfg.batch_size, sampler=self.sampler, drop_last=cfg.drop_last, **loader_kw
        )
        self.val_loader = None
        if val_dataset is not None:
            self.val_loader = DataLoader(
                val_dataset,
                batch_size=cfg.eval_batch_size or 2 * cfg.batch_size,
                sampler=ShardSampler(len(val_dataset), self.rank, self.world),
                **loader_kw,
            )
        self.updates_per_epoch = len(self.train_loader)
        if cfg.max_steps_per_epoch:
            self.updates_per_epoch = min(self.updates_per_epoch, cfg.max_steps_per_epoch)
        if self.updates_per_epoch == 0:
            raise ValueError(
                f"the training set ({len(train_dataset)} samples) is smaller than one batch of {cfg.batch_size} "
                f"x {self.world} process(es) with drop_last; lower --batch-size"
            )

        opt_kw: dict[str, Any] = {}
        if cfg.opt_betas is not None:
            opt_kw["betas"] = tuple(cfg.opt_betas)
        if cfg.opt_eps is not None:
            opt_kw["eps"] = cfg.opt_eps
        self.optimizer = create_optimizer_v2(
            param_groups if param_groups is not None else self.model,
            opt=cfg.opt,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.momentum,
            **opt_kw,
        )
        self.schedule = create_schedule(
            self.optimizer,
            sched=cfg.sched,
            epochs=cfg.epochs,
            updates_per_epoch=self.updates_per_epoch,
            lr=cfg.lr,
            warmup_epochs=cfg.warmup_epochs,
            warmup_lr=cfg.warmup_lr,
            min_lr=cfg.min_lr,
            cooldown_epochs=cfg.cooldown_epochs,
            decay_epochs=cfg.decay_epochs,
            decay_rate=cfg.decay_rate,
            on_updates=cfg.sched_on_updates,
            pct_start=cfg.pct_start,
            div_factor=cfg.div_factor,
            cycle_momentum=cfg.cycle_momentum,
        )
        self.amp_dtype = self._resolve_amp_dtype()
        self.scaler = (
            torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 and self.device.type == "cuda" else None
        )
        if cfg.sync_bn and self.world > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=cfg.ema_warmup) if cfg.ema else None
        self.ddp_model: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=cfg.find_unused_parameters
            )

        self.start_epoch = 0
        self.global_step = 0
        self.best_metric = math.nan
        self.best_epoch = -1
        self.best_source = ""
        self.best_tiebreak = math.nan
        self.history: list[dict[str, Any]] = []
        self.skipped: dict[str, Skipped] = {}
        self.tiebreak_key, self.tiebreak_mode = self._parse_tiebreak(cfg.eval_tiebreak)

    # ------------------------------------------------------------------ setup helpers
    def _resolve_amp_dtype(self) -> torch.dtype | None:
        # AMP is for GPUs: on this project's CPUs bf16 autocast ran slower than fp32 (core README), so "auto" turns it
        # off on the CPU; an explicit --amp-dtype still asks for it there.
        if not self.cfg.amp:
            return None
        name = self.cfg.amp_dtype
        if name == "auto":
            return torch.float16 if self.device.type == "cuda" else None
        dtypes = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
        if name not in dtypes:
            raise ValueError(f"amp_dtype must be auto, bfloat16 or float16, got {name!r}")
        return dtypes[name]

    @property
    def eval_precision(self) -> str:
        """The precision validation runs in: the run's AMP dtype, else fp32 (``validate`` defaults to the same)."""
        return precision_of(self.amp_dtype)

    def autocast(self):
        return autocast(self.device, self.eval_precision)

    def _config_dict(self) -> dict[str, Any]:
        return {
            "config_class": type(self.cfg).__name__,
            "config": dataclasses.asdict(self.cfg),
            "run_info": self.run_info,
            "world_size": self.world,
            "eval_precision": self.eval_precision,
        }

    @staticmethod
    def _parse_tiebreak(spec: str | None) -> tuple[str, str]:
        name, _, mode = (spec or "loss:min").partition(":")
        mode = mode or ("min" if name.endswith("loss") else "max")
        if mode not in ("min", "max"):
            raise ValueError(f"eval_tiebreak {spec!r}: the direction after ':' must be min or max")
        return name, mode

    # ------------------------------------------------------------------ checkpoints
    def _state_paths(self, epoch: int) -> tuple[Path, Path]:
        stem = self.out_dir / "checkpoints" / f"epoch-{epoch:04d}"
        return stem.with_suffix(".safetensors"), stem.with_suffix(".state.pt")

    def _save_checkpoint(self, epoch: int) -> None:
        if not du.is_main_process():
            return
        weights, state = self._state_paths(epoch)
        save_safetensors(self.model.state_dict(), weights, metadata={"epoch": str(epoch)})
        atomic_torch_save(
            {
                "epoch": epoch,
                "global_step": self.global_step,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
            },
            state,
        )
        sidecar = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "global_step": self.global_step,
            "weights": str(weights.relative_to(self.out_dir)),
            "state": str(state.relative_to(self.out_dir)),
            "best_metric": None if math.isnan(self.best_metric) else self.best_metric,
            "best_epoch": self.best_epoch,
            "best_source": self.best_source,
            "best_tiebreak": None if math.isnan(self.best_tiebreak) else self.best_tiebreak,
            "skipped": [v.as_dict() for v in self.skipped.values()],
            **self._config_dict(),
        }
        # The sidecar is the commit point: it only ever names a complete set of files.
        atomic_write_text(self.out_dir / "last.json", json.dumps(sidecar, indent=2))
        for old in (self.out_dir / "checkpoints").glob("epoch-*"):
            if not old.name.startswith(f"epoch-{epoch:04d}."):
                old.unlink(missing_ok=True)

    def _save_best(self, state_dict: dict[str, torch.Tensor], epoch: int, source: str, metrics: dict) -> None:
        if not du.is_main_process():
            return
        meta = {"epoch": epoch, "source": source, "metrics": metrics, **self._config_dict()}
        save_safetensors(state_dict, self.out_dir / "best.safetensors", metadata={"epoch": str(epoch)})
        atomic_write_text(self.out_dir / "best.json", json.dumps(meta, indent=2))

    def _maybe_resume(self) -> None:
        last = self.out_dir / "last.json"
        if not self.cfg.resume:
            if last.exists():
                raise FileExistsError(
                    f"{self.out_dir} already holds a run ({last}); pass --resume to continue it or choose another "
                    "--out-dir"
                )
            return
        if not last.exists():
            if du.is_main_process():
                print(f"[miil] nothing to resume in {self.out_dir}: starting a new run")
            return
        meta = json.loads(last.read_text())
        weights = load_checkpoint(self.out_dir / meta["weights"])
        self.model.load_state_dict(weights, strict=True)
        state = load_checkpoint(self.out_dir / meta["state"])
        if int(state["epoch"]) != int(meta["epoch"]):
            raise RuntimeError(f"checkpoint state {meta['state']} is for epoch {state['epoch']}, not {meta['epoch']}")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            if state.get("ema") is None:
                raise RuntimeError(f"{last} was written without EMA but this run has --ema on")
            self.ema.load_state_dict(state["ema"])
        self.start_epoch = int(meta["epoch"]) + 1
        self.global_step = int(meta["global_step"])
        self.best_metric = math.nan if meta.get("best_metric") is None else float(meta["best_metric"])
        self.best_epoch = int(meta.get("best_epoch", -1))
        self.best_source = meta.get("best_source", "")
        self.best_tiebreak = math.nan if meta.get("best_tiebreak") is None else float(meta["best_tiebreak"])
        self.skipped = {d["file"]: Skipped(**d) for d in meta.get("skipped", [])}
        history_file = self.out_dir / "metrics.jsonl"
        if history_file.exists():
            rows = [json.loads(x) for x in history_file.read_text().splitlines() if x.strip()]
            self.history = [r for r in rows if r.get("epoch", -1) < self.start_epoch]
        if du.is_main_process():
            print(f"[miil] resumed {self.out_dir} after epoch {meta['epoch']} (step {self.global_step})")

    # ------------------------------------------------------------------ loop
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        seed_everything(cfg.seed + 1_000_003 * (epoch + 1) + 7919 * self.rank)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        self.ddp_model.train()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        steps, seen = 0, 0
        skipped: list[Skipped] = []
        t0 = time.perf_counter()
        bar = tqdm(
            total=self.updates_per_epoch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not cfg.progress or not du.is_main_process(),
            dynamic_ncols=True,
        )
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for batch, bad in self.train_loader:
            if steps >= self.updates_per_epoch:
                break
            skipped += bad
            if batch is None:
                if self.world > 1:
                    raise RuntimeError("a whole training batch was unreadable; under DDP every rank must step")
                continue
            batch = to_device(batch, self.device)
            if self.batch_transform is not None:
                batch = self.batch_transform(batch)
            with self.autocast():
                if self.step_fn is not None:
                    loss = self.step_fn(self.ddp_model, batch)
                else:
                    loss = self.loss_fn(self.ddp_model(batch[0]), batch[1])
            if steps % cfg.log_interval == 0 and not torch.isfinite(loss.detach()).item():
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {steps}")
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if cfg.clip_grad:
                    self.scaler.unscale_(self.optimizer)
                    dispatch_clip_grad(params, cfg.clip_grad, mode=cfg.clip_mode)
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                if cfg.clip_grad:
                    dispatch_clip_grad(params, cfg.clip_grad, mode=cfg.clip_mode)
                self.optimizer.step()
            self.global_step += 1
            steps += 1
            seen += len(batch[0]) if isinstance(batch, list | tuple) else 0
            if self.ema is not None:
                self.ema.update(self.model, step=self.global_step)
            self.schedule.step_update(self.global_step)
            loss_sum += loss.detach().double()
            bar.update(1)
            if steps % cfg.log_interval == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / steps:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
        bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the epoch's time includes its queued GPU work
        self._sync_replicas()
        elapsed = time.perf_counter() - t0
        totals = du.all_reduce_sum(torch.tensor([loss_sum.item(), steps, seen, len(skipped)], dtype=torch.float64))
        loss_mean = totals[0].item() / max(totals[1].item(), 1)
        for item in gather_skipped(skipped):
            self.skipped.setdefault(item.file, item)
        return {
            "train_loss": loss_mean,
            "lr": self.optimizer.param_groups[0]["lr"],
            "updates": steps,
            "samples_per_s": totals[2].item() / max(elapsed, 1e-9),
            "skipped_unreadable": int(totals[3].item()),
            "epoch_time_s": elapsed,
        }

    @torch.no_grad()
    def _sync_replicas(self) -> None:
        """Make every rank hold rank 0's buffers (BatchNorm statistics) and EMA copy at the end of an epoch.

        DDP keeps the parameters identical, but each rank updates its BatchNorm running statistics from its own
        batches (DDP's per-forward buffer broadcast happens before the last forward), and each rank's EMA follows its
        own buffers. Broadcasting from rank 0 makes the weights every rank evaluates the weights rank 0 saves, and makes
        a resumed run (which loads rank 0's files on every rank) continue exactly like an uninterrupted one.
        """
        if self.world <= 1:
            return
        modules = [self.model.buffers()]
        if self.ema is not None:
            modules += [self.ema.module.parameters(), self.ema.module.buffers()]
        for tensors in modules:
            for t in tensors:
                work = t.data if t.device.type == self.device.type else t.data.to(self.device)
                torch.distributed.broadcast(work, src=0)
                if work is not t.data:
                    t.data.copy_(work)

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """Validate ``model`` (default: the raw model) on the whole validation set once, over all ranks.

        Runs :func:`miil.core.evaluate.evaluate` in the run's evaluation precision, the one ``validate`` uses by
        default, so the numbers that select the best checkpoint are the numbers ``validate`` reports for it.
        """
        if self.val_loader is None:
            return {}
        report = evaluate(
            model or self.model,
            self.val_loader,
            meter=self.meter,
            eval_fn=self.eval_fn,
            loss_fn=self.loss_fn,
            device=self.device,
            precision=self.eval_precision,
            progress=self.cfg.progress,
            desc="validate",
        )
        for item in report.skipped:
            self.skipped.setdefault(item.file, item)
        result = dict(report.metrics)
        if report.skipped_count:
            result["skipped_unreadable"] = report.skipped_count
        return result

    def _metric_key(self, metrics: dict[str, float]) -> str:
        if self.cfg.eval_metric:
            if self.cfg.eval_metric not in metrics:
                raise KeyError(f"eval_metric {self.cfg.eval_metric!r} not among validation metrics {list(metrics)}")
            return self.cfg.eval_metric
        return next(iter(metrics)) if self.meter is not None else "loss"

    def _eval_mode(self) -> str:
        # Without a meter and an explicit metric, keep-best follows the validation loss, which is minimised.
        return "min" if self.meter is None and not self.cfg.eval_metric else self.cfg.eval_mode

    def _better(self, value: float, tiebreak: float, than: float, than_tiebreak: float) -> bool:
        """Is ``(value, tiebreak)`` better than ``(than, than_tiebreak)``? Equal keep-best metrics (e.g. a small
        validation set that saturates mAP at 100) are decided by the tie-break metric; a full tie keeps the older."""
        if math.isnan(value):
            return False
        if math.isnan(than):
            return True
        if value != than:
            return value > than if self._eval_mode() == "max" else value < than
        if math.isnan(tiebreak) or math.isnan(than_tiebreak) or tiebreak == than_tiebreak:
            return False
        return tiebreak > than_tiebreak if self.tiebreak_mode == "max" else tiebreak < than_tiebreak

    def _select(self, epoch: int, candidates: list[tuple[str, dict[str, float], nn.Module]]) -> dict[str, Any]:
        """Pick this epoch's better weights (raw or EMA), keep them if they beat the best so far; say so in the row."""
        key = self._metric_key(candidates[0][1])
        scored = [
            (src, float(m.get(key, math.nan)), float(m.get(self.tiebreak_key, math.nan)), mod, m)
            for src, m, mod in candidates
        ]
        pick = scored[0]
        for cand in scored[1:]:
            if self._better(cand[1], cand[2], pick[1], pick[2]):
                pick = cand
        source, value, tiebreak, module, metrics = pick
        new_best = self._better(value, tiebreak, self.best_metric, self.best_tiebreak)
        if new_best:
            self.best_metric, self.best_tiebreak, self.best_epoch, self.best_source = value, tiebreak, epoch, source
            self._save_best(module.state_dict(), epoch, source, metrics)
        return {
            "source": source,
            "metric": key,
            "value": value,
            "tiebreak": self.tiebreak_key,
            "tiebreak_value": None if math.isnan(tiebreak) else tiebreak,
            "new_best": new_best,
        }

    def fit(self) -> TrainResult:
        """Run (or resume) training to ``cfg.epochs``; returns the best metric and the per-epoch history."""
        cfg = self.cfg
        self._maybe_resume()
        if du.is_main_process():
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / "config.json", json.dumps(self._config_dict(), indent=2))
        du.barrier()
        self.schedule.start(self.start_epoch, self.global_step)
        metrics_file = self.out_dir / "metrics.jsonl"
        if du.is_main_process() and self.cfg.resume:
            # Drop rows of epochs after the checkpoint (a crash between the metrics line and the checkpoint).
            atomic_write_text(metrics_file, "".join(json.dumps(r) + "\n" for r in self.history))
        for epoch in range(self.start_epoch, cfg.epochs):
            row: dict[str, Any] = {"epoch": epoch, **self._train_epoch(epoch)}
            self.schedule.step_epoch(epoch + 1)
            candidates: list[tuple[str, dict[str, float], nn.Module]] = []
            if self.val_loader is not None:
                raw = self.evaluate(self.model)
                candidates.append(("raw", raw, self.model))
                row["val"] = raw
                if self.ema is not None:
                    ema = self.evaluate(self.ema.module)
                    candidates.append(("ema", ema, self.ema.module))
                    row["val_ema"] = ema
            if candidates and any(m for _, m, _ in candidates):
                row["selected"] = self._select(epoch, candidates)
            else:  # no validation: the latest weights are the result
                self.best_epoch, self.best_source = epoch, "ema" if self.ema is not None else "raw"
                final = self.ema.module if self.ema is not None else self.model
                self._save_best(final.state_dict(), epoch, self.best_source, {})
            row["best"] = {"metric": self.best_metric, "epoch": self.best_epoch, "source": self.best_source}
            self._save_checkpoint(epoch)
            self.history.append(row)
            if du.is_main_process():
                with open(metrics_file, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                if self.skipped:
                    write_json(self.out_dir / "skipped.json", [v.as_dict() for v in self.skipped.values()])
                self._print_epoch(row)
            du.barrier()
            if os.environ.get(_KILL_AFTER_EPOCH) == str(epoch + 1):
                os.kill(os.getpid(), signal.SIGKILL)
        return TrainResult(
            self.out_dir,
            self.best_metric,
            self.best_epoch,
            self.best_source,
            self.history,
            sorted(self.skipped.values(), key=lambda item: item.file),
        )

    def _print_epoch(self, row: dict[str, Any]) -> None:
        # One line per epoch, with or without progress bars: epoch, loss, lr, validation metrics, choice, time.
        parts = [
            f"epoch {row['epoch'] + 1}/{self.cfg.epochs}",
            f"loss {row['train_loss']:.4f}",
            f"lr {row['lr']:.3g}",
        ]
        for name in ("val", "val_ema"):
            if row.get(name):
                parts.append(name + " " + " ".join(f"{k} {v:.4g}" for k, v in row[name].items()))
        if "selected" in row:
            sel = row["selected"]
            parts.append(f"kept {sel['source']}{' (new best)' if sel['new_best'] else ''}")
        if row["skipped_unreadable"]:
            parts.append(f"skipped {row['skipped_unreadable']} unreadable")
        parts.append(f"{row['epoch_time_s']:.1f}s")
        print(" | ".join(parts), flush=True)


def load_run_weights(run_dir: str | os.PathLike, which: str = "best") -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and sidecar of a finished run: ``which`` is "best" or "last"."""
    run = Path(run_dir)
    if which == "best":
        return load_checkpoint(run / "best.safetensors"), json.loads((run / "best.json").read_text())
    if which == "last":
        meta = json.loads((run / "last.json").read_text())
        return load_checkpoint(run / meta["weights"]), meta
    raise ValueError(f"which must be 'best' or 'last', got {which!r}")
