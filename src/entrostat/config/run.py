"""The run configuration: nested typed dataclasses (YAML recipe + dotted CLI overrides).

Every field documents itself; ``entrostat show-config`` prints the resolved values
and the help. Paper values are quoted in the recipes under ``configs/``.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Any

from entrostat.config.base import ConfigError, doc
from entrostat.losses.config import LossConfig
from entrostat.registry import unknown_name_message
from entrostat.tasks.config import TaskConfig


def _at_least_one(section: Any, where: str, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(section, name) < 1:
            raise ConfigError(f"{where}.{name} = {getattr(section, name)} must be ≥ 1")


def _at_least_zero(section: Any, where: str, names: tuple[str, ...], zero: str) -> None:
    """ConfigError for a negative field; ``zero`` says what 0 means (a negative value used to act like it)."""
    for name in names:
        if getattr(section, name) < 0:
            raise ConfigError(f"{where}.{name} = {getattr(section, name)} must be ≥ 0 ({zero})")


FLOAT32_MAX = 3.4028234663852886e38


def _finite(value: float) -> bool:
    return math.isfinite(value)


@dataclass
class ModelConfig:
    name: str = doc("lab", "'lab' (the built-in tiny model, pre-trained and cached on first use), a known alias "
                    "(smollm2-135m; `entrostat models list`), a local HF model directory, a .gguf file (converted "
                    "once and cached) or a hub id (needs a reachable hub)")
    dtype: str = doc("float32", "weights dtype: float32 or bfloat16")
    bf16_autocast: bool = doc(False, "run forward passes under bf16 autocast (fp32 master weights)")
    cache_dir: str | None = doc(None, "where the lab base model and converted GGUF models are cached (default "
                                "$ENTROSTAT_CACHE or ~/.cache/entrostat)")
    lab_recipe: dict = doc({}, "overrides of the lab base model's pre-training recipe (LabRecipe fields, e.g. steps); "
                           "its task defaults to task.kwargs when the run trains on the lab task")
    init_from: str | None = doc(None, "start from the weights of another run: its directory (latest checkpoint) or "
                                "RUN/checkpoints/step-N, same model and LoRA settings; optimizer, schedule and "
                                "controllers start fresh")
    lora: dict = doc({}, "LoRA adapters through PEFT; {} = off (full fine-tuning). Keys: r (default 16), alpha (32), "
                     "dropout (0.0), target_modules ('all-linear' or a list such as [q_proj, v_proj]); only the "
                     "adapters train and checkpoints hold only them")

    def validate(self, where: str = "") -> None:
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"{where}.dtype = {self.dtype!r}: use float32 or bfloat16")
        if self.lora:
            from entrostat.models.lora import lora_settings

            try:
                lora_settings(self.lora, f"{where}.lora")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None


@dataclass
class RolloutConfig:
    prompts_per_step: int = doc(16, "P: prompts per step")
    group_size: int = doc(8, "G: samples per prompt")
    max_new_tokens: int = doc(12, "completion budget in tokens (also Dr.GRPO's T_max)")
    temperature: float = doc(1.0, "sampling temperature of the main rollout")
    backend: str = doc("hf", "sampler of training rollouts: hf (built-in transformers sampler, CPU or GPU) or vllm "
                       "(needs a CUDA GPU and `pip install 'entrostat[vllm]'`; weights synced after optimizer steps)")
    vllm_gpu_memory: float = doc(0.5, "vllm backend: fraction of GPU memory the vLLM engine may take (weights + KV cache)")

    def validate(self, where: str = "") -> None:
        _at_least_one(self, where, ("prompts_per_step", "group_size", "max_new_tokens"))
        if not self.temperature > 0:
            raise ConfigError(f"{where}.temperature = {self.temperature} must be > 0")
        from entrostat.rollout.backends import BACKENDS  # the registry sits above the config machinery

        if self.backend not in BACKENDS:
            raise ConfigError(f"{where}.backend: " + unknown_name_message("rollout backend", self.backend, BACKENDS.names())
                              + " (hf: built-in, CPU; vllm: a CUDA GPU)")
        if not 0 < self.vllm_gpu_memory <= 1:
            raise ConfigError(f"{where}.vllm_gpu_memory = {self.vllm_gpu_memory} must be in (0, 1]")
        if self.backend == "vllm":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(f"{where}.backend = vllm needs a CUDA GPU and torch sees none; use "
                                  f"{where}.backend=hf (the built-in sampler runs on CPU)")


@dataclass
class OptimConfig:
    lr: float = doc(2e-4, "AdamW learning rate (the papers use 5e-7 to 1e-6 on 7B models)")
    weight_decay: float = doc(0.0, "AdamW weight decay")
    betas: list[float] = doc([0.9, 0.999], "AdamW betas")
    grad_clip: float = doc(1.0, "max global gradient norm (0 disables clipping)")
    schedule: str = doc("constant", "learning-rate schedule: constant, linear or cosine (decay to 0 at the last step)")
    warmup_steps: int = doc(0, "linear warm-up steps")

    def validate(self, where: str = "") -> None:
        if self.schedule not in ("constant", "linear", "cosine"):
            raise ConfigError(f"{where}.schedule = {self.schedule!r}: use constant, linear or cosine")
        if not (self.lr > 0 and _finite(self.lr)):
            raise ConfigError(f"{where}.lr = {self.lr} must be a finite number > 0, e.g. 1e-6")
        if self.lr > FLOAT32_MAX:  # torch's AdamW cannot even apply it
            raise ConfigError(f"{where}.lr = {self.lr} is beyond the float32 range ({FLOAT32_MAX:.3g}); "
                              "use a learning rate such as 1e-6")
        if not (self.weight_decay >= 0 and _finite(self.weight_decay)):
            raise ConfigError(f"{where}.weight_decay = {self.weight_decay} must be a finite number ≥ 0 (0: none)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"{where}.betas = {self.betas} must be two numbers in [0, 1) (β₁, β₂), "
                              "e.g. [0.9, 0.999]")
        if not self.grad_clip >= 0:
            raise ConfigError(f"{where}.grad_clip = {self.grad_clip} must be ≥ 0 (0: no clipping)")
        _at_least_zero(self, where, ("warmup_steps",), "0: no warm-up")


@dataclass
class TrainerConfig:
    steps: int = doc(200, "RL steps (one rollout each)")
    mini_batches: int = doc(1, "optimizer steps per rollout: the rollout is split into this many mini-batches")
    epochs: int = doc(1, "passes over the rollout (PPO-style reuse with old log-probs)")
    micro_batch_size: int = doc(0, "rows per forward/backward (gradient accumulation); 0 = the whole mini-batch")
    share_prompts: bool = doc(True, "run each prompt's forward pass once for the rows of its group (same values, "
                                    "G times less prompt compute); false: every row runs its own prompt")
    seed: int = doc(0, "seed of model init, sampling and selections")
    max_nonfinite_in_row: int = doc(3, "stop after this many consecutive non-finite losses (each is skipped and counted)")
    threads: int = doc(0, "torch CPU threads (0: leave torch's default)")

    def validate(self, where: str = "") -> None:
        _at_least_one(self, where, ("steps", "mini_batches", "epochs", "max_nonfinite_in_row"))
        _at_least_zero(self, where, ("micro_batch_size",), "0: the whole mini-batch")
        _at_least_zero(self, where, ("threads",), "0: torch's default")


@dataclass
class EvalConfig:
    every: int = doc(50, "evaluate on held-out prompts every N steps (and at the start and end); 0 disables")
    prompts: int = doc(128, "number of held-out prompts")
    samples: int = doc(8, "samples per held-out prompt (pass@1 is their mean)")
    temperature: float = doc(1.0, "evaluation sampling temperature")

    def validate(self, where: str = "") -> None:
        _at_least_zero(self, where, ("every",), "0: no evaluation")
        _at_least_one(self, where, ("prompts", "samples"))
        if not (self.temperature >= 0 and _finite(self.temperature)):
            raise ConfigError(f"{where}.temperature = {self.temperature} must be a finite number ≥ 0 (0: greedy)")


RUN_DIR_FIELDS = ("recipe", "time")


def check_run_dir_pattern(pattern: str, where: str = "log.run_dir") -> None:
    """ConfigError unless ``pattern`` is a non-empty path whose only ``{...}`` fields are ``RUN_DIR_FIELDS``."""
    if not pattern.strip():
        raise ConfigError(f"{where} is empty: name a run directory, e.g. runs/{{recipe}}-{{time}} (it would write "
                          "into the current directory)")
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{where} = {pattern!r}: {exc}; write {{{{ and }}}} for literal braces") from None
    bad = [f for f in fields if f not in RUN_DIR_FIELDS]
    if bad:
        raise ConfigError(f"{where} = {pattern!r}: unknown field {{{bad[0]}}}; the fields filled in are "
                          f"{', '.join('{' + f + '}' for f in RUN_DIR_FIELDS)} "
                          "(write {{ and }} for literal braces)")


@dataclass
class LogConfig:
    run_dir: str = doc("runs/{recipe}-{time}", "run directory; {recipe} and {time} are filled in")
    checkpoint_every: int = doc(50, "write a checkpoint every N steps (and at the end); 0 disables")
    keep_checkpoints: int = doc(2, "how many recent checkpoints to keep (≥ 1)")
    progress: bool = doc(True, "show a progress bar")
    tensorboard: bool = doc(False, "also write every metrics record to TensorBoard event files in RUN/tensorboard/ "
                            "(needs `pip install 'entrostat[tensorboard]'`)")
    wandb: bool | str = doc(False, "also log every metrics record to Weights & Biases: true (project 'entrostat') "
                            "or a project name; $WANDB_MODE is passed on (needs `pip install 'entrostat[wandb]'`)")

    def validate(self, where: str = "") -> None:
        import importlib.util
        import sys

        where = where or "log"
        check_run_dir_pattern(self.run_dir, f"{where}.run_dir")
        _at_least_zero(self, where, ("checkpoint_every",), "0: no checkpoints")
        _at_least_one(self, where, ("keep_checkpoints",))
        for name in ("tensorboard", "wandb"):  # the sink's package has the sink's name
            on = getattr(self, name)
            if on and sys.modules.get(name) is None and importlib.util.find_spec(name) is None:
                raise ConfigError(f"{where}.{name} = {on!r} needs the {name} package, which is not installed: "
                                  f"pip install 'entrostat[{name}]' (or set {where}.{name}=false)")


@dataclass
class ControlConfig:
    name: str = doc("none", "entropy controller: none, adaptive_entropy, aepo, scope_rl, flex_id, flex_did, flex_od, thermostat")
    kwargs: dict = doc({}, "controller arguments (e.g. target, actuator, kp, ki); see entrostat.control")


@dataclass
class RunConfig:
    recipe: str = doc("grpo", "recipe name (informational; written into the run directory)")
    model: ModelConfig = doc(ModelConfig(), "the policy model")
    task: TaskConfig = doc(TaskConfig(), "prompts and verifier")
    rollout: RolloutConfig = doc(RolloutConfig(), "sampling")
    loss: LossConfig = doc(LossConfig(), "the policy objective")
    optim: OptimConfig = doc(OptimConfig(), "optimiser")
    trainer: TrainerConfig = doc(TrainerConfig(), "loop structure")
    control: ControlConfig = doc(ControlConfig(), "entropy controller driving loss actuators each step")
    eval: EvalConfig = doc(EvalConfig(), "held-out evaluation")
    log: LogConfig = doc(LogConfig(), "outputs")

    def validate(self, where: str = "") -> None:
        rows = self.rollout.prompts_per_step * self.rollout.group_size
        mb = self.trainer.mini_batches
        if rows % mb != 0 or (rows // mb) % self.rollout.group_size != 0:
            raise ConfigError(
                f"a rollout of {self.rollout.prompts_per_step} prompts × {self.rollout.group_size} samples = {rows} rows "
                f"cannot be split into trainer.mini_batches = {mb} mini-batches of whole groups; choose mini_batches "
                f"dividing prompts_per_step = {self.rollout.prompts_per_step}"
            )
        micro = self.trainer.micro_batch_size
        if micro and (rows // mb) % micro != 0:
            raise ConfigError(
                f"trainer.micro_batch_size = {micro} does not divide the mini-batch of {rows // mb} rows; "
                "pick a divisor (or 0 for the whole mini-batch)"
            )
        self._check_group_size()
        self._check_target()
        from entrostat.config.checks import check_effects  # it asks the controllers, which sit above config

        check_effects(self)

    def _check_group_size(self) -> None:
        """The advantage estimator on one zero-reward group of ``rollout.group_size``: GRPO and RLOO need two samples
        (a dry run of the estimator itself, so a newly registered one declares its own minimum)."""
        import torch

        from entrostat.losses import compute_advantages

        g = self.rollout.group_size
        try:
            compute_advantages(self.loss.advantage, torch.zeros(g), torch.zeros(g, dtype=torch.long))
        except ValueError as exc:
            raise ConfigError(f"rollout.group_size = {g} with loss.advantage = {self.loss.advantage!r}: "
                              f"{exc}") from None

    def _check_target(self) -> None:
        """An entropy target must stay > 0 over the whole run: no sampling policy reaches entropy 0, so a controller
        would wind up for ever (and the thermostat divides by H*)."""
        got = target_range(self)
        if got is not None and got[0] <= 0:
            raise ConfigError(f"control.kwargs.target: H* = {got[0]} at step {got[2]} of {self.trainer.steps}; an "
                              "entropy target must be > 0 (a sampling policy's entropy never reaches 0 and the "
                              "controller would wind up): choose a positive target, e.g. 0.45")


def target_range(cfg: RunConfig) -> tuple[float, float, int, int] | None:
    """(lowest H*, highest H*, a step where the lowest is, a step where the highest is) of the controller's entropy
    target over steps 0..trainer.steps, or None when the controller has no ``target`` parameter.

    Schedules are functions of step / total (``control.targets``); for long runs they are sampled at 10 001 points.
    """
    if cfg.control.name == "none":
        return None
    from entrostat.config.base import from_dict
    from entrostat.control import CONTROLLERS, build_target

    params_cls = getattr(CONTROLLERS.get(cfg.control.name), "Params", None)
    if params_cls is None:
        return None
    spec = getattr(from_dict(params_cls, dict(cfg.control.kwargs), "control.kwargs"), "target", None)
    if spec is None:
        return None
    target, total = build_target(spec), cfg.trainer.steps
    steps = sorted({*range(0, total + 1, max(1, total // 10_000)), total})
    values = [(target(k, total), k) for k in steps]
    (lo, k_lo), (hi, k_hi) = min(values), max(values, key=lambda v: v[0])  # the first step of each
    return lo, hi, k_lo, k_hi


def lab_base_recipe(cfg: RunConfig) -> dict:
    """The lab base model's recipe for a run: ``model.lab_recipe``, whose ``task`` defaults to ``task.kwargs`` when
    the run trains on the lab task, so the base model is pre-trained on the task RL then trains it on (the thought
    lab, ``task.kwargs.thought_len``, needs a base model that writes a thought)."""
    recipe = dict(cfg.model.lab_recipe)
    if cfg.task.name == "lab" and cfg.task.kwargs:
        recipe.setdefault("task", dict(cfg.task.kwargs))
    return recipe


def run_config_from(data: dict[str, Any]) -> RunConfig:
    from entrostat.config.base import from_dict

    if "aux" in data:  # written before the controllers declared their auxiliary rollouts themselves
        raise ConfigError("this config has an `aux` section, which is now part of the controller's arguments: "
                          "move its keys (prompt_fraction, n_reg, n_reg_frac, positive_threshold, positive_filter) "
                          "under control.kwargs")
    return from_dict(RunConfig, data)
