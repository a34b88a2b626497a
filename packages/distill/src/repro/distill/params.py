"""The params of each ``repro-distill`` job, as dataclasses read with :mod:`repro.core.params`.

The plan (:mod:`repro.distill.plan`) writes each job's params as JSON; the CLI builds the
job's dataclass here (unknown keys and wrong types stop with one line naming the key), and
``packages/distill/tests/test_kd_params.py`` holds the config schemas (this package's
``schemas/kd*``) to the same keys. Torch-free, so the planner may import it.

- ``train``, ``evaluate``: :class:`RunParams` (one run), :class:`PretrainedParams`, each with
  a :class:`TrainConfig` (a recipe of the ``kd`` section, resolved).
- ``train-group``: :class:`GroupParams` (``common`` and each cell's own keys).
- ``report``: :class:`ReportParams` (tables :class:`PaperTable`); ``leaderboard``:
  :class:`Leaderboard`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from repro.core import ReproError

#: ``TrainConfig.teacher_precision`` values (see ``Distiller.teacher_logits``)
TeacherPrecision = Literal["autocast", "float32"]


@dataclass
class TrainConfig:
    """Optimiser, schedule and run settings (defaults: mdistiller's CIFAR-100 recipe)."""

    epochs: int = 240
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: list[int] = field(default_factory=lambda: [150, 180, 210])
    lr_decay: float = 0.1
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda or cuda:<i> (repro.core.device)
    amp: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on CPU too (2x on CPUs with avx512_bf16/AMX)
    #: under autocast, the frozen teacher (and the prepare step) runs in the training's bf16
    #: ("autocast": one teacher forward per batch for a whole lockstep row) or in "float32"
    teacher_precision: TeacherPrecision = "autocast"
    channels_last: bool = True  # NHWC activations: faster convs on CUDA and on CPU (oneDNN)
    eval_batch_size: int = 256
    crop_padding: int = 4
    flip: bool = True
    mean: list[float] | None = None
    std: list[float] | None = None
    threads: int | None = None
    workers: int = 0  # folder datasets: DataLoader processes decoding JPEGs
    image_size: int = 224  # folder datasets: train crop and eval centre-crop size
    sync_bn: bool = True  # several GPU processes: BatchNorm statistics over the global batch
    stop_after_steps: int | None = None  # testing aid: simulate a crash after N steps

    def lr_at(self, epoch: int) -> float:
        """Step schedule, 1-based epochs, decayed once per milestone passed (``epoch > m``)."""
        return self.lr * self.lr_decay ** sum(epoch > m for m in self.lr_milestones)


#: TrainConfig keys that are testing aids, not settings of the config (not in the schema).
TESTING_AIDS = ("stop_after_steps",)


@dataclass
class RunParams:
    """One training run (``repro-distill train``; a cell of ``train-group``): a KD student
    (``plan.kd_params``) or a model trained alone with ``ce`` (``plan.vanilla_params``).

    ``teacher_weights`` / ``init_weights``: the user's weights files of a pretrained teacher
    and of the student's initialisation; the plan gives each with its config key (``*_key``,
    named by the error when the file is not set, null, or does not fit)."""

    student: str
    method: str
    teacher: str | None = None
    dataset: str | None = None
    variant: str | None = None
    recipe: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher_weights: str | None = None
    teacher_weights_key: str | None = None
    init_weights: str | None = None
    init_weights_key: str | None = None

    @property
    def name(self) -> str:
        """The variant (the method when the params name none)."""
        return self.variant if self.variant is not None else self.method

    @property
    def pretrained_teacher(self) -> bool:
        """Whether the teacher is the user's weights file rather than a model.pt trained here."""
        return self.teacher_weights is not None or self.teacher_weights_key is not None

    @property
    def starts_from_file(self) -> bool:
        """Whether the student starts from the user's weights file (``init_weights``)."""
        return self.init_weights is not None or self.init_weights_key is not None


@dataclass
class GroupParams:
    """A lockstep group (``repro-distill train-group``; ``plan.group_params``): each cell's
    run params are ``common`` updated with its entry of ``cells`` (``plan.expand_group``)."""

    cells: list[dict[str, Any]]
    common: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        if not self.cells:
            raise ReproError(f"{where}.cells: a group needs at least one cell")


@dataclass
class PretrainedParams:
    """Scoring a user-supplied pretrained teacher (``repro-distill evaluate``;
    ``plan.pretrained_eval_params``): its weights file and the dataset's recipe."""

    teacher: str
    teacher_weights: str | None = None
    teacher_weights_key: str = "teacher_weights"
    dataset: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class Table:
    """Cells over the KD run pool: every variant on every pair at every seed, with one recipe
    (``run_recipes``: a variant whose runs are another recipe's, ``plan.run_recipe``)."""

    title: str
    dataset: str
    recipe: str
    pairs: list[str]
    variants: list[str]
    seeds: list[int]
    run_recipes: dict[str, str] = field(default_factory=dict)


@dataclass
class PaperTable(Table):
    """A table of a KD paper's scorecard (``reported_only``: published baselines not run)."""

    reported_only: list[str] = field(default_factory=list)


@dataclass
class Leaderboard(Table):
    """The fair KD leaderboard (``repro-distill leaderboard``; ``plan.leaderboard``): each
    variant's paired difference from ``baseline`` with its t interval at ``confidence``."""

    baseline: str = "kd"
    confidence: float = 0.95

    def check(self, where: str) -> None:
        if self.baseline not in self.variants:
            raise ReproError(f"{where}.baseline: '{self.baseline}' is not one of the variants")
        if not 0.0 < self.confidence < 1.0:
            raise ReproError(f"{where}.confidence: {self.confidence} is not between 0 and 1")


@dataclass
class ReportParams:
    """A KD paper's scorecard (``repro-distill report``; ``plan.report_params``).

    ``figure_cell``: the run the paper's own figures draw from, as ``plan.Cell``'s fields
    (``figure_teacher_weights``, ``_key``: its teacher's file when that is the user's);
    ``pretrained``: the (dataset, teacher) pairs that are the user's files; ``partial``: a
    preview while runs are still going (missing runs leave their cells empty)."""

    paper: str
    tables: list[PaperTable]
    teacher_seed: int = 0
    pretrained: list[list[str]] = field(default_factory=list)
    figures: list[str] = field(default_factory=lambda: ["accuracy"])
    figure_cell: list[str | int] | None = None
    figure_teacher_weights: str | None = None
    figure_teacher_weights_key: str | None = None
    partial: bool = False
