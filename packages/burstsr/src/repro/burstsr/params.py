"""Each burst SR job's parameters as dataclasses (torch-free), read with :mod:`repro.core.params`.

:mod:`repro.burstsr.plan` writes each job's params as JSON from the ``burst_sr`` config section;
the CLI turns them into the step's dataclass here (unknown keys and wrong types stop with one
line naming the key). Sub-dataclasses that are a config subsection (``burst``, ``net``,
``train``, ``eval``, ``val``, a model's entry) have the schema's keys and defaults
(``tests/test_burstsr_params.py`` holds them to this package's
``schemas/burst_sr.schema.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from repro.core import ReproError

Kind = Literal["bicubic", "bilinear", "single", "flownet", "burst"]
Align = Literal["gt", "flownet", "pwcnet"]


@dataclass
class BurstConfig:
    """Every parameter of the synthetic burst model (config key ``burst_sr.burst``)."""

    burst_size: int = 14
    downsample: int = 4
    max_translation: float = 24.0
    max_rotation: float = 1.0
    border_crop: int = 24
    crop: int = 384
    quantize_8bit: bool = True
    add_noise: bool = True
    random_ccm: bool = True
    random_gains: bool = True
    smoothstep: bool = True
    gamma: bool = True
    rgb_order: Literal["rgb", "bgr"] = "rgb"

    def check(self, where: str) -> None:
        if self.crop % (2 * self.downsample):
            raise ReproError(
                f"{where}.crop: {self.crop} is not a multiple of 2*downsample={2 * self.downsample}"
            )

    @property
    def source_size(self) -> int:
        """Side of the sRGB crop a burst is made from (crop + 2 * border)."""
        return self.crop + 2 * self.border_crop


@dataclass
class NetConfig:
    """Widths/depths of the CNNs (config key ``burst_sr.net``; DBSR values by default)."""

    enc_dim: int = 64
    enc_blocks: int = 9
    feat_dim: int = 512
    offset_dim: int = 64
    weight_dim: int = 128
    weight_blocks: int = 3
    dec_dim: int = 64
    dec_blocks: int = 5
    up_dim: int = 32
    up_blocks: int = 4
    flow_dim: int = 32
    flow_range: int = 4
    residual: bool = False
    normalize: bool = False


@dataclass
class TrainConfig:
    """The training recipe (``burst_sr.train`` with a model's ``train`` overrides)."""

    iterations: int = 100000
    batch_size: int = 16
    burst_size: int = 8
    lr: float = 0.0001
    lr_step: int = 40000
    lr_gamma: float = 0.2
    checkpoint_every: int = 1000
    log_every: int = 100
    boundary_ignore: int = 40


@dataclass
class EvalConfig:
    """Scoring settings (config key ``burst_sr.eval``)."""

    boundary_ignore: int = 40
    quantize_bits: int | None = 14
    frame_counts: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 14])
    batch_size: int = 4
    example_index: int = 0
    lpips: bool = True
    limit: int | None = None
    aligned_flow: Literal["auto", "pwcnet", "dis"] = "auto"


@dataclass
class ValConfig:
    """The stored validation bursts (config key ``burst_sr.val``)."""

    count: int = 300
    seed: int = 1234


@dataclass
class ModelSpec:
    """A model's entry in ``burst_sr.models`` without the keys that only label it in the
    summary (:data:`repro.burstsr.plan.LABELS`)."""

    kind: Kind
    align: Align | None = None  # a burst model's alignment; none given: gt
    flownet: str | None = None
    train: dict[str, int | float] = field(default_factory=dict)

    @property
    def alignment(self) -> str | None:
        """A burst model's alignment (gt when not given); None for other kinds."""
        return (self.align or "gt") if self.kind == "burst" else None


@dataclass
class SourceConfig:
    """The source images of one split (``burst_sr.data`` without ``burstsr_root``)."""

    source: Literal["photos", "zurich"] = "photos"
    photos_dir: str = "data/photos"
    train_photos: list[str] | None = None
    val_photos: list[str] | None = None
    zurich_root: str | None = None


@dataclass
class ValParams:
    """``make-val``: the stored validation bursts."""

    burst: BurstConfig = field(default_factory=BurstConfig)
    data: SourceConfig = field(default_factory=SourceConfig)
    val: ValConfig = field(default_factory=ValConfig)
    threads: int | None = None


@dataclass
class TrainParams:
    """``train``: one model and seed."""

    model: str
    spec: ModelSpec
    seed: int
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    burst: BurstConfig = field(default_factory=BurstConfig)
    data: SourceConfig = field(default_factory=SourceConfig)
    device: str = "cpu"
    pwcnet_weights: str | None = None
    pwcnet_bgr: bool = False
    threads: int | None = None


@dataclass
class ScoreParams:
    """Scoring one model (a trained one: its run of ``seed``; an untrained baseline: none)."""

    model: str
    spec: ModelSpec
    seed: int | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    device: str = "cpu"
    threads: int | None = None


@dataclass
class EvalParams(ScoreParams):
    """``evaluate``: on the stored validation bursts (LPIPS from the user's AlexNet weights)."""

    lpips_weights: str | None = None


@dataclass
class RealParams(ScoreParams):
    """``evaluate-real``: on the BurstSR val bursts (AlignedPSNR's flow: PWC-Net when set)."""

    pwcnet_weights: str | None = None
    pwcnet_bgr: bool = False


@dataclass
class SummaryModel:
    """How the summary shows one scored model."""

    label: str
    kind: Kind
    align: Align | None = None


@dataclass
class RealTrack:
    """The models that can run on real bursts, and whether the real track was run."""

    models: list[str] = field(default_factory=list)
    planned: bool = True


@dataclass
class SummaryEval:
    """The scoring settings the scorecard's notes and the visual comparison show."""

    boundary_ignore: int = 40
    example_index: int = 0


@dataclass
class SummaryParams:
    """``summarize``: the scorecard and figures."""

    models: dict[str, SummaryModel]
    run: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    real_track: RealTrack = field(default_factory=RealTrack)
    eval: SummaryEval = field(default_factory=SummaryEval)
    source: Literal["photos", "zurich"] = "photos"
    threads: int | None = None
