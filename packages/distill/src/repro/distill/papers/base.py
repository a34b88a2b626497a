"""What every KD paper shares: the paper contract over the run pool, and a scorecard whose
figures are accuracy by method plus the paper's own (a subclass names and draws them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from repro.core.papers import schema_file
from repro.distill import plan

if TYPE_CHECKING:
    from repro.distill.report import FigureContext

#: The resources of a scorecard job (the leaderboard's too): one core, no GPU.
REPORT_RESOURCES = {"threads": 1, "mem_mb": 4000, "runtime": 20}


class KDPaper:
    """A KD paper: its tables are cells of the shared pool (section ``kd``), its scorecard a
    view over them. Subclasses set the class attributes and, for figures of their own,
    :meth:`figures`, :meth:`figure_inputs` and :meth:`draw`."""

    #: The paper's name in the config's ``papers`` (its section: ``-`` -> ``_``).
    name: ClassVar[str]
    #: Display name: the scorecard's title, the Snakemake report's category.
    title: ClassVar[str]
    #: The temperature policy whose per-sample values the paper's figures show, drawn from
    #: one run (:func:`repro.distill.plan.figure_cell`); None: no such figure.
    figure_policy: ClassVar[str | None] = None
    #: The paper's figures drawn from that run (a placeholder says so while it is missing).
    run_figures: ClassVar[tuple[str, ...]] = ()
    #: Each own figure's label in the Snakemake report and caption in summary.md.
    labels: ClassVar[Mapping[str, str]] = {}
    captions: ClassVar[Mapping[str, str]] = {}

    @property
    def section(self) -> str:
        """The paper's config section (its tables)."""
        return plan.PAPERS[self.name]

    @property
    def SCHEMAS(self) -> dict[str, str]:  # noqa: N802 - the paper contract's name
        """The pool, the fair leaderboard (both shared by the KD papers) and the paper's own
        section, each with its schema file."""
        return {
            plan.POOL: plan.POOL_SCHEMA,
            plan.LEADERBOARD: schema_file("repro.distill", plan.LEADERBOARD),
            self.section: schema_file("repro.distill", "kd_paper"),
        }

    # -- the paper contract (repro.core.papers) -------------------------------------------------
    def check(self, config: dict[str, Any]) -> list[str]:
        """The pool's problems (the same for every KD paper) and the paper's tables'."""
        return plan.paper_check(config, self.name)

    def datasets(self, config: dict[str, Any]) -> set[str]:
        """The datasets the paper's tables and the leaderboard read."""
        return plan.datasets(config, self.name)

    def preflight(self, config: dict[str, Any], planned: Any) -> list[str]:
        """Unset weights files of the planned runs of the paper's tables and the leaderboard
        (two KD papers that share a run give the same line; the workflow names both)."""
        return plan.preflight(config, planned, [self.name])

    def targets(self, config: dict[str, Any], results: str) -> list[str]:
        """The scorecard job's outputs and, when configured, the fair leaderboard's."""
        files = [path for path, _ in plan.report_outputs(config, results, self.name).values()]
        if plan.leaderboard(config) is not None:
            files += [path for path, _ in plan.leaderboard_outputs(results).values()]
        return files

    def resources(self, config: dict[str, Any], step: str) -> dict[str, Any]:
        """``train`` (and ``evaluate``): ``kd.resources.default`` (a dataset's own, see
        :func:`repro.distill.plan.train_resources`); ``report`` and ``leaderboard``: one
        core."""
        if step in ("train", "evaluate"):
            return plan.train_resources(config, "default")
        if step in ("report", "leaderboard"):
            return dict(REPORT_RESOURCES)
        raise KeyError(f"{self.name}: no step '{step}' (train, evaluate, report, leaderboard)")

    def check_target(self, config: dict[str, Any], results: str, target: str) -> str | None:
        """A pool target naming a dataset, recipe, variant, model or seed that does not
        exist: one line listing the valid names (repro.core.papers.target_problems)."""
        return plan.target_problem(config, results, target)

    # -- the scorecard's own figures ----------------------------------------------------------
    def figures(self, config: dict[str, Any]) -> list[str]:
        """The paper's own figures (after accuracy by method): those drawn from the figure
        run when its tables have a variant with the paper's policy."""
        return list(self.run_figures) if plan.figure_cell(config, self.name) is not None else []

    def figure_inputs(self, config: dict[str, Any], results: str) -> list[str]:
        """What the own figures read besides the results: the figure run's teacher (its
        model.pt, or the user's file of a pretrained teacher) and its dataset."""
        cell = plan.figure_cell(config, self.name)
        if cell is None:
            return []
        teacher = plan.teacher_input(
            config, results, {"dataset": cell.dataset, "teacher": cell.teacher}
        )
        return [*teacher, f"data/{cell.dataset}/meta.json"]

    def draw(self, names: list[str], figures: FigureContext) -> dict[str, Any]:
        """Draw the own figures ``names`` into ``figures.fig_dir``; returns numbers for the
        provenance record."""
        return {}
