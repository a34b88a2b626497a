"""Parameters of each pipeline step, as dataclasses with documented defaults.

Every design choice the paper's abstract leaves open is one field here; ``docs/fmri-adv.md``
gives the reason for each default. Each step's CLI takes exactly its dataclass as
``--params JSON``, built by ``repro.core.params.parse`` (nested dataclasses from the
annotations; unknown keys and wrong types stop with one line naming the key), then each
dataclass's ``check``. Torch-free, so the workflow's planner may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repro.core import ReproError


def _choice(value: Any, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ReproError(f"{key}: '{value}' is not one of {', '.join(allowed)}")


def _positive(value: float, key: str, zero_ok: bool = False) -> None:
    if not isinstance(value, int | float) or value < 0 or (value == 0 and not zero_ok):
        raise ReproError(f"{key}: must be a {'non-negative' if zero_ok else 'positive'} number")


@dataclass
class AttackParams:
    """One L-inf attack (FGSM or PGD) in pixel units on 0..255 images."""

    method: str = "pgd"  # fgsm | pgd
    epsilon: float = 16.0  # L-inf budget, pixel units (0..255)
    step_size: float = 2.0  # PGD step, pixel units
    steps: int = 10  # PGD iterations
    random_start: bool = True  # PGD: uniform start in the epsilon ball (Madry et al. 2018)

    def check(self, where: str) -> None:
        _choice(self.method, ("fgsm", "pgd"), f"{where}.method")
        _positive(self.epsilon, f"{where}.epsilon")
        _positive(self.step_size, f"{where}.step_size")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ReproError(f"{where}.steps: must be a positive integer")


@dataclass
class NetParams:
    """The target and substitute networks (zoo names) and their input normalisation."""

    target: str = "resnet20"
    substitute: str = "wrn_16_2"
    weights_format: str = "trainer"  # trainer (model.pt of repro-distill) | torchvision
    mean: list[float] = field(default_factory=lambda: [0.5])  # per channel, on [0, 1] images
    std: list[float] = field(default_factory=lambda: [0.5])

    def check(self, where: str) -> None:
        _choice(self.weights_format, ("trainer", "torchvision"), f"{where}.weights_format")
        if self.target == self.substitute:
            raise ReproError(f"{where}.substitute: must differ from the target ('{self.target}')")
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ReproError(f"{where}.std: needs one positive value per entry of mean")


@dataclass
class StimulusParams:
    """Which clean images, which attack, and the seed of ``repro-fmri stimuli``."""

    nets: NetParams = field(default_factory=NetParams)
    attack: AttackParams = field(default_factory=AttackParams)
    split: str = "test"  # array datasets: test; ImageNet index: val
    image_size: int = 224  # ImageNet index only: evaluation centre crop (resize to size/0.875)
    per_class: int = 2  # clean source images per class
    classes: list[int] | None = None  # class indices to use; None: all
    require_correct: bool = True  # sources both networks classify correctly when clean
    seed: int = 0
    batch_size: int = 256
    device: str = "cpu"

    def check(self, where: str) -> None:
        if not isinstance(self.per_class, int) or self.per_class < 1:
            raise ReproError(f"{where}.per_class: must be a positive integer")


@dataclass
class DnnParams:
    """Layers read out by forward hooks, and the RDM distance of ``repro-fmri dnn``."""

    nets: NetParams = field(default_factory=NetParams)
    target_layers: list[str] | None = None  # module names; None: the stages and the classifier
    substitute_layers: list[str] | None = None
    distance: str = "correlation"  # correlation | euclidean
    stats: StatsParams = field(default_factory=lambda: StatsParams())
    batch_size: int = 256
    device: str = "cpu"

    def check(self, where: str) -> None:
        _choice(self.distance, ("correlation", "euclidean"), f"{where}.distance")


@dataclass
class SimParams:
    """The simulated fMRI experiment (design, ROI geometry, noise) of ``repro-fmri simulate``."""

    seed: int = 0
    geometry: str = "planted"  # planted | null (i.i.d. patterns: no geometry, no difference)
    n_subjects: int = 3
    n_runs: int = 4
    task: str = "adv"
    tr: float = 1.5  # s
    stim_duration: float = 1.0  # s
    soa: float = 4.0  # s between trial onsets (plus jitter)
    jitter: float = 1.0  # s, uniform extra delay before each trial
    lead_in: float = 6.0  # s of fixation before the first trial
    tail: float = 16.0  # s after the last trial (HRF return)
    shape: list[int] = field(default_factory=lambda: [8, 8, 4])  # voxel grid
    voxel_size: float = 3.0  # mm
    rois: list[str] = field(default_factory=lambda: ["early", "late"])  # one z-slab each
    roi_voxels: int = 48  # voxels per ROI (taken from the slab)
    hrf_model: str = "glover"
    baseline: float = 100.0  # scanner units; amplitudes below are in % of it
    mean_response: float = 1.0  # common response to every stimulus
    signal: float = 3.0  # rms of the stimulus-specific pattern (response amplitude units)
    item_weight: float = 0.3  # late ROI: image-specific part relative to the category part
    wb_roi: str = "late"  # ROI where white-box stimuli carry an extra displacement
    wb_effect: float = 0.8  # that displacement's rms relative to ``signal``
    noise_sd: float = 1.0  # thermal noise sd per volume
    ar1: float = 0.3  # temporal autocorrelation of the noise
    drift: float = 2.0  # rms of the slow drift (cosines below the high-pass cut-off)
    motion_sd: float = 0.05  # random-walk step of the six motion parameters
    motion_effect: float = 2.0  # voxel signal per unit motion (loadings ~ N(0, 1))
    p_correct: float = 0.95  # behaviour: same in every condition (noise does not matter)

    def check(self, where: str) -> None:
        _choice(self.geometry, ("planted", "null"), f"{where}.geometry")
        for key in ("tr", "stim_duration", "soa", "signal", "noise_sd", "voxel_size"):
            _positive(getattr(self, key), f"{where}.{key}")
        for key in ("jitter", "lead_in", "tail", "drift", "motion_sd", "wb_effect"):
            _positive(getattr(self, key), f"{where}.{key}", zero_ok=True)
        if not 0 <= self.ar1 < 1:
            raise ReproError(f"{where}.ar1: must be in [0, 1)")
        if not 0 <= self.p_correct <= 1:
            raise ReproError(f"{where}.p_correct: must be in [0, 1]")
        if len(self.shape) != 3 or len(self.rois) > self.shape[2]:
            raise ReproError(f"{where}.shape: three sizes with at least one z-slab per ROI")
        if self.roi_voxels > self.shape[0] * self.shape[1]:
            raise ReproError(f"{where}.roi_voxels: more than one slab of shape {self.shape}")
        if self.wb_roi and self.wb_roi not in self.rois:
            raise ReproError(f"{where}.wb_roi: '{self.wb_roi}' is not one of rois")
        if self.n_runs < 2:
            raise ReproError(f"{where}.n_runs: at least 2 (cross-validated RDMs)")


@dataclass
class BidsParams:
    """Where the analysis finds runs, events, confounds and ROI masks (see ``bids.py``)."""

    task: str = "adv"
    tr: float = 1.5  # expected repetition time (s); every run must have it
    rois: list[str] = field(default_factory=lambda: ["early", "late"])
    roi_dir: str = "derivatives/rois"
    confounds_dir: str = "derivatives/confounds"
    confounds: list[str] = field(
        default_factory=lambda: ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    )
    subjects: list[str] | None = None  # labels without "sub-"; None: all found


@dataclass
class GlmParams:
    """First-level GLM per run (nilearn): one regressor per stimulus (LSA)."""

    hrf_model: str = "glover"
    drift_model: str = "cosine"  # cosine | polynomial | none
    high_pass: float = 0.01  # Hz, cosine drift cut-off (128 s)
    drift_order: int = 1  # polynomial drift order
    noise_model: str = "ols"  # ols | ar1 (nilearn run_glm)
    noise_normalisation: str = "multivariate"  # none | univariate | multivariate
    # multivariate: covariance estimator (rsatoolbox's names), residual dof n - rank(X)
    noise_covariance: str = "shrinkage_eye"  # shrinkage_eye (Ledoit-Wolf) | shrinkage_diag

    def check(self, where: str) -> None:
        _choice(self.drift_model, ("cosine", "polynomial", "none"), f"{where}.drift_model")
        _choice(self.noise_model, ("ar1", "ols"), f"{where}.noise_model")
        _choice(
            self.noise_normalisation,
            ("none", "univariate", "multivariate"),
            f"{where}.noise_normalisation",
        )
        _choice(
            self.noise_covariance, ("shrinkage_eye", "shrinkage_diag"), f"{where}.noise_covariance"
        )


@dataclass
class RsaParams:
    """ROI RDMs and their comparison with model and layer RDMs."""

    roi_distance: str = "crossnobis"  # crossnobis (cross-validated over runs) | correlation
    comparison: str = "spearman"  # spearman | tau-a | pearson
    models: list[str] = field(default_factory=lambda: ["pixels", "category"])

    def check(self, where: str) -> None:
        _choice(self.roi_distance, ("crossnobis", "correlation"), f"{where}.roi_distance")
        _choice(self.comparison, ("spearman", "tau-a", "pearson"), f"{where}.comparison")
        for m in self.models:
            _choice(m, ("pixels", "category"), f"{where}.models")


@dataclass
class StatsParams:
    """Randomisation tests and multiple-comparison control."""

    n_permutations: int = 10000
    alpha: float = 0.05  # the run's one significance level: config fmri_adv.alpha (the plan)
    correction: str = "fdr_bh"  # fdr_bh | max_stat | none
    seed: int = 0

    def check(self, where: str) -> None:
        _choice(self.correction, ("fdr_bh", "max_stat", "none"), f"{where}.correction")
        if not isinstance(self.n_permutations, int) or self.n_permutations < 99:
            raise ReproError(f"{where}.n_permutations: must be an integer >= 99")
        if not 0 < self.alpha < 1:
            raise ReproError(f"{where}.alpha: must be in (0, 1)")


@dataclass
class AnalysisParams:
    """Everything ``repro-fmri analyse`` needs besides paths."""

    bids: BidsParams = field(default_factory=BidsParams)
    glm: GlmParams = field(default_factory=GlmParams)
    rsa: RsaParams = field(default_factory=RsaParams)
    stats: StatsParams = field(default_factory=StatsParams)
    device: str = "cpu"  # of the permutation tests


@dataclass
class ReportParams:
    """What ``repro-fmri report`` needs besides paths."""

    alpha: float = 0.05  # significance in the claims and figures: config fmri_adv.alpha

    def check(self, where: str) -> None:
        if not 0 < self.alpha < 1:
            raise ReproError(f"{where}.alpha: must be in (0, 1)")
