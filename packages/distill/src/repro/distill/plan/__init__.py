"""Plan the KD run pool shared by the KD papers (torch-free: the Snakefile imports it).

The pool (config section ``kd``) holds what the papers share; each paper's section lists the
tables it reports, and its summary is a view over the pool::

    kd:
      seeds: [0, 1, 2, 3, 4]          # default seeds of every table
      teacher_seed: 0                 # the teacher every KD cell distils from
      recipes:                        # named training recipes (TrainConfig keys)
        cifar: {epochs: 240, lr: 0.05, ..., student_lr: {ShuffleV1: 0.01}}
        cifar_360: {extends: cifar, epochs: 360}
      vanilla_recipes: {default: cifar, imagenet: imagenet}   # models trained alone
      variants:                       # named method variants: method, arguments, and recipe
        kd: {method: kd}              # overrides per recipe name
        energy_kd: {method: kd, args: {temperature: {policy: energy}},
                    train: {cifar: {epochs: 360}}}
      dataset_args: {tinyimagenet: {r2kd_cutout: {cutout_size: 16}}}  # per dataset, deep-merged
      pair_args: {cifar100: {vgg13-vgg8: {dkd: {beta: 6}}}}  # per pair, deep-merged
      pretrained_teachers: {imagenet: {resnet34_imagenet: /path/resnet34-b627a593.pth}}
      mdistiller_teachers: {cifar100: /path/cifar_teachers}  # mdistiller's released teachers
      init_weights: {cub200: {resnet18_imagenet: /path/resnet18-f37072fd.pth}}  # start from
      resources: {default: {...}, cifar100: {gpu: 1, ...}}   # Snakemake resources per dataset
    energy_kd:
      tables:
        - {title: CIFAR-100, dataset: cifar100, recipe: cifar, pairs: [resnet32x4-resnet8x4],
           variants: [kd, dkd, energy_kd], seeds: [0, 1, 2, 3, 4], reported_only: [mlkd]}
    kd_leaderboard: {dataset: cifar100, recipe: fair, pairs: [...], variants: [...],
                     seeds: [0, 1, 2, 3, 4], baseline: kd}

A *cell* is (dataset, teacher, student, variant, recipe, seed); a cell that two tables (or two
papers, or the leaderboard) ask for is planned once. A recipe that only ``extends`` another (an
alias, e.g. the leaderboard's ``fair: {extends: cifar}``) shares its parent's runs for every
variant that overrides neither (:func:`run_recipe`): the runs are the same, so they are trained
once. ``reported_only`` variants of a table (published baselines we do not implement, e.g.
MLKD) are scorecard rows with the reported number and an empty ours, never planned. A teacher
is trained once per (dataset, model, teacher_seed), whichever paper asks for it, unless
``pretrained_teachers`` names the user's weights file or ``mdistiller_teachers`` the folder
extracted from mdistiller's ``cifar_teachers.tar`` (every teacher released there:
:data:`MDISTILLER_TEACHERS`; :func:`pretrained_teachers`).
Training settings layer as: recipe < the variant's overrides for that recipe < the recipe's
``student_lr`` for the student; method arguments as: the variant's < ``dataset_args`` <
``pair_args``. ``init_weights`` starts every run of a (dataset, model), trained alone or as a
student, from the user's weights file (e.g. ImageNet-pretrained ResNets for the fine-grained
sets; the classifier is new). Each job's params are exactly what determines its output.

The modules, one per part of the plan: :mod:`.pool` (recipes and arguments), :mod:`.jobs`
(each job's params), :mod:`.tables` (the papers' tables and the leaderboard as cells),
:mod:`.cells` (a cell and where runs live), :mod:`.lockstep` (groups of cells trained in one
job), :mod:`.scorecard` (a scorecard job's params, runs and outputs), :mod:`.checks`
(start-up checks and pre-flight) and :mod:`.rules` (what the rule files ask). What differs
between the KD papers is in ``repro/distill/papers/<section>.py``; the names below are the
plan's interface (``from repro.distill import plan; plan.kd_params(...)``).
"""

from __future__ import annotations

from repro.distill.plan.cells import (
    CELL_KEYS,
    Cell,
    cell_dir,
    cell_of,
    params_cell,
    split_pair,
    vanilla_dir,
)
from repro.distill.plan.checks import (
    check,
    datasets,
    missing_mdistiller,
    paper_check,
    planned_models,
    pool_problems,
    preflight,
    table_problems,
    target_problem,
    unset_init,
    unset_pretrained,
)
from repro.distill.plan.jobs import kd_params, pretrained_eval_params, vanilla_params
from repro.distill.plan.lockstep import (
    GROUP_KEYS,
    GROUPS_DIR,
    SHARED_SETTINGS,
    Group,
    expand_group,
    group_file,
    group_of,
    group_params,
    grouped_cell_targets,
    lockstep_groups,
    lockstep_inputs,
    run_groups,
)
from repro.distill.plan.pool import (
    MDISTILLER_TEACHERS,
    POOL,
    POOL_SCHEMA,
    RECIPE_META,
    TRAIN_DEFAULTS,
    deep_merge,
    has_init,
    init_key,
    init_weights,
    is_pretrained,
    mdistiller_file,
    pretrained_key,
    pretrained_teachers,
    pretrained_weights,
    recipe,
    run_recipe,
    train_resources,
    train_settings,
    vanilla_recipe,
    variant_args,
)
from repro.distill.plan.rules import (
    NEVER,
    figure_inputs,
    group_runtime,
    init_input,
    jobs_per_gpu,
    leaderboard_inputs,
    pretrained_input,
    recipe_pattern,
    report_inputs,
    teacher_arg,
    teacher_input,
    teacher_model,
    variant_pattern,
)
from repro.distill.plan.scorecard import (
    FIGURE_LABELS,
    REPORTED_ONLY_NOTE,
    figure_cell,
    figure_label,
    figure_run,
    leaderboard_outputs,
    report_figures,
    report_outputs,
    report_params,
    report_runs,
    scorecard_cells,
    title,
)
from repro.distill.plan.tables import (
    LEADERBOARD,
    LEADERBOARD_DIR,
    PAPERS,
    leaderboard,
    leaderboard_runs,
    paper_cells,
    paper_vanilla,
    pool_cells,
    pretrained_pairs,
    run_leaderboard,
    run_papers,
    table,
    table_cells,
    table_vanilla,
    tables,
)

__all__ = [
    "CELL_KEYS",
    "Cell",
    "FIGURE_LABELS",
    "GROUPS_DIR",
    "GROUP_KEYS",
    "Group",
    "LEADERBOARD",
    "LEADERBOARD_DIR",
    "MDISTILLER_TEACHERS",
    "NEVER",
    "PAPERS",
    "POOL",
    "POOL_SCHEMA",
    "RECIPE_META",
    "REPORTED_ONLY_NOTE",
    "SHARED_SETTINGS",
    "TRAIN_DEFAULTS",
    "cell_dir",
    "cell_of",
    "check",
    "datasets",
    "deep_merge",
    "expand_group",
    "figure_cell",
    "figure_inputs",
    "figure_label",
    "figure_run",
    "group_file",
    "group_of",
    "grouped_cell_targets",
    "group_params",
    "group_runtime",
    "has_init",
    "init_input",
    "init_key",
    "init_weights",
    "is_pretrained",
    "jobs_per_gpu",
    "kd_params",
    "leaderboard",
    "leaderboard_inputs",
    "leaderboard_outputs",
    "leaderboard_runs",
    "lockstep_groups",
    "lockstep_inputs",
    "mdistiller_file",
    "missing_mdistiller",
    "paper_cells",
    "paper_check",
    "paper_vanilla",
    "params_cell",
    "planned_models",
    "pool_cells",
    "pool_problems",
    "preflight",
    "pretrained_eval_params",
    "pretrained_input",
    "pretrained_key",
    "pretrained_pairs",
    "pretrained_teachers",
    "pretrained_weights",
    "recipe",
    "recipe_pattern",
    "report_figures",
    "report_inputs",
    "report_outputs",
    "report_params",
    "report_runs",
    "run_groups",
    "run_leaderboard",
    "run_papers",
    "run_recipe",
    "scorecard_cells",
    "split_pair",
    "table",
    "table_cells",
    "table_problems",
    "target_problem",
    "table_vanilla",
    "tables",
    "teacher_arg",
    "teacher_input",
    "teacher_model",
    "title",
    "train_resources",
    "train_settings",
    "unset_init",
    "unset_pretrained",
    "vanilla_dir",
    "vanilla_params",
    "vanilla_recipe",
    "variant_args",
    "variant_pattern",
]
