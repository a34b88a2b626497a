"""The numbers of the fMRI-adversarial report as plain rows, and the report's files.

``claim_rows`` gives the abstract's qualitative claims beside ours (yes/no from our tests);
``number_rows`` the quantities (attack success, DNN accuracy per condition, ROI x reference
similarities with p-values, white/black differences, human accuracy). Both are lists of
dicts that ``repro.core.scorecard`` or ``repro.core.tables`` can write; ``write_report``
writes ``summary.csv``/``summary.md``, the figures and ``provenance.json``.

Every row and figure that rests on the brain data says whether they are simulated (the
analysis found ``derivatives/simulation/truth.json``: ``repro-fmri simulate`` wrote them) or
measured (a user's BIDS dataset). A claim about the brain or human behaviour tested on
simulated data is not compared with the paper: its "ours" is empty and its note starts with
:data:`NOT_COMPARABLE`, followed by what the test on the simulated data found. A claim row
and the detail row of the same test give the same n (source images for the white/black
difference, trials of the two conditions for behaviour, image pairs for McNemar).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from repro.core.params import to_dict
from repro.core.provenance import write_provenance
from repro.fmri.params import ReportParams

#: The note of a claim row whose evidence is simulated data.
NOT_COMPARABLE = "not comparable: simulated data"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def data_label(simulated: bool) -> str:
    """How the brain and behavioural data came about: ``simulated`` or ``measured``."""
    return "simulated" if simulated else "measured"


def _brain_claim(item: str, holds: str, simulated: bool, row: dict[str, Any]) -> dict[str, Any]:
    """A claim row resting on fMRI or behavioural data; on simulated data it is not compared
    with the paper (no "ours"), the note says so and gives the simulated answer."""
    if simulated:
        note = f"{NOT_COMPARABLE} (on the simulated data: {holds}); {row.pop('note')}"
        return {"section": "claim", "item": item, "ours": None, "note": note, **row}
    return {"section": "claim", "item": item, "ours": holds, **row}


def claim_rows(
    dnn: dict[str, Any], analysis: dict[str, Any] | None, simulated: bool, alpha: float = 0.05
) -> list[dict[str, Any]]:
    """The abstract's four qualitative claims, each with our yes/no and its evidence."""
    rows = [_dnn_claim(dnn)]
    if analysis is not None:
        rows.append(_brain_claim_row(analysis, simulated))
        beh = analysis.get("behaviour")
        if beh is not None:
            rows.append(_behaviour_claim(beh, analysis["n_subjects"], simulated, alpha))
    rows.append(_accuracy_claim(dnn["networks"]["target"], alpha))
    return rows


def _dnn_claim(dnn: dict[str, Any]) -> dict[str, Any]:
    """White/black differ in the target network: yes when any layer is significant."""
    target = dnn["networks"]["target"]
    wb_layers = [r for r in target["wb_difference"] if r["significant"]]
    best = min(target["wb_difference"], key=lambda r: r["p"])
    return {
        "section": "claim",
        "item": "white/black-box representations differ in the DNN (significant)",
        "ours": _yes(bool(wb_layers)),
        "value": best["T"],
        "p": best["p"],
        "p_adjusted": best["p_adjusted"],
        "n": dnn["n_stimuli"] // 3,
        "note": f"target {target['model']}: significant in {len(wb_layers)} of "
        f"{len(target['wb_difference'])} layers; value/p: layer {best['layer']}",
    }


def _brain_claim_row(analysis: dict[str, Any], simulated: bool) -> dict[str, Any]:
    """White/black differ in the brain: yes when any ROI is significant."""
    label = data_label(simulated)
    wb = analysis["wb_difference"]
    sig = [r for r in wb if r["significant"]]
    best_roi = min(wb, key=lambda r: r["p"])
    return _brain_claim(
        "white/black-box representations differ in the brain (significant)",
        _yes(bool(sig)),
        simulated,
        {
            "value": best_roi["T"],
            "p": best_roi["p"],
            "p_adjusted": best_roi["p_adjusted"],
            "n": analysis["n_sources"],
            "note": f"{label} fMRI data, {analysis['n_subjects']} subjects; significant "
            f"in {len(sig)} of {len(wb)} ROIs; value/p: ROI {best_roi['roi']}, n: source "
            "images (sign-flip test on the group RDM)",
        },
    )


def _behaviour_claim(
    beh: dict[str, Any], n_subjects: int, simulated: bool, alpha: float
) -> dict[str, Any]:
    """Human categorisation unaffected: yes when neither difference from clean is significant."""
    tests = beh["tests"]
    unaffected = all(t["p"] >= alpha for t in tests.values())
    cond, worst = min(tests.items(), key=lambda kv: kv[1]["p"])
    return _brain_claim(
        "human categorisation unaffected by either noise",
        _yes(unaffected),
        simulated,
        {
            "value": worst["difference"],
            "p": worst["p"],
            "p_adjusted": None,
            "n": worst["n_trials"],
            "note": f"{data_label(simulated)} responses, {n_subjects} subjects; "
            f"accuracy {cond} - clean (the smaller p of white/black), n: trials of "
            "the two conditions",
        },
    )


def _accuracy_claim(target: dict[str, Any], alpha: float) -> dict[str, Any]:
    """DNN accuracy degraded: yes when both attacks lower the target's accuracy (McNemar)."""
    mc = target["mcnemar"]
    degraded = all(mc[c]["p"] < alpha for c in ("white", "black"))
    return {
        "section": "claim",
        "item": "DNN accuracy degraded by the adversarial noise",
        "ours": _yes(degraded)
        + ("" if degraded or mc["white"]["p"] >= alpha else " (white-box only)"),
        "value": target["accuracy"]["black"] - target["accuracy"]["clean"],
        "p": mc["black"]["p"],
        "p_adjusted": None,
        "n": target["n"]["black"],
        "note": f"target {target['model']}; value/p: black-box (the weaker attack), "
        "McNemar, one-sided",
    }


def _roles(dnn: dict[str, Any]) -> list[str]:
    """Networks in report order: target first (JSON files store keys sorted)."""
    order = {"target": 0, "substitute": 1}
    return sorted(dnn["networks"], key=lambda r: (order.get(r, 2), r))


def number_rows(
    stim_meta: dict[str, Any], dnn: dict[str, Any], analysis: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Attack success, DNN accuracy, ROI x reference similarity, white/black differences."""
    rows = _attack_rows(stim_meta)
    for role in _roles(dnn):
        rows += _network_rows(role, dnn["networks"][role], dnn["n_stimuli"] // 3)
    if analysis is not None:
        label = data_label(bool(analysis.get("simulated")))
        rows += _brain_rows(analysis, label)
        beh = analysis.get("behaviour")
        if beh is not None:
            rows += _behaviour_rows(beh, label)
    return rows


def _attack_rows(stim_meta: dict[str, Any]) -> list[dict[str, Any]]:
    success = stim_meta.get("attack_success") or {}
    return [
        {
            "section": "attack success on target",
            "item": cond,
            "value": success[cond]["success_rate"],
            "n": success[cond]["n"],
        }
        for cond in ("white", "black")
        if cond in success
    ]


def _network_rows(role: str, net: dict[str, Any], n_sources: int) -> list[dict[str, Any]]:
    """One network's accuracy per condition (McNemar against clean) and white/black rows."""
    rows = []
    for cond in ("clean", "white", "black"):
        mc = net["mcnemar"].get(cond)
        rows.append(
            {
                "section": f"DNN accuracy ({role} {net['model']})",
                "item": cond,
                "value": net["accuracy"][cond],
                "p": mc["p"] if mc else None,
                "n": net["n"][cond],
            }
        )
    for r in net["wb_difference"]:
        rows.append(
            {
                "section": f"white-black difference ({role} {net['model']})",
                "item": r["layer"],
                "value": r["T"],
                "p": r["p"],
                "p_adjusted": r["p_adjusted"],
                "n": n_sources,
                "note": f"effect size {r['effect_size']:.2f}",
            }
        )
    return rows


def _brain_rows(analysis: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """ROI x reference similarities and the white/black difference per ROI."""
    method = analysis["params"]["comparison"]
    rows = [
        {
            "section": f"ROI x reference ({method}, {label} fMRI data)",
            "item": f"{r['roi']} ~ {r['reference']}",
            "value": r["r"],
            "p": r["p"],
            "p_adjusted": r["p_adjusted"],
            "n": analysis["n_stimuli"],
            "note": f"subject mean {r['r_subject_mean']:.3f}",
        }
        for r in analysis["relatedness"]
    ]
    rows += [
        {
            "section": f"white-black difference (brain, {label} fMRI data)",
            "item": r["roi"],
            "value": r["T"],
            "p": r["p"],
            "p_adjusted": r["p_adjusted"],
            "n": analysis["n_sources"],
            "note": f"effect size {r['effect_size']:.2f}; n: source images",
        }
        for r in analysis["wb_difference"]
    ]
    return rows


def _behaviour_rows(beh: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """Human accuracy per condition and each adversarial condition's difference from clean."""
    section = f"human accuracy ({label} responses)"
    rows = [
        {
            "section": section,
            "item": cond,
            "value": beh["accuracy"][cond],
            "n": beh["n_trials"][cond],
            "note": "n: trials",
        }
        for cond in ("clean", "white", "black")
    ]
    rows += [
        {
            "section": section,
            "item": f"{cond} - clean",
            "value": test["difference"],
            "p": test["p"],
            "n": test["n_trials"],
            "note": "n: trials of the two conditions (permutation within subjects)",
        }
        for cond, test in beh["tests"].items()
    ]
    return rows


#: The abstract's claims, in the order the scorecard lists them (``reported/fmri-adv.yaml`` uses
#: the same texts as keys).
CLAIMS = {
    "white/black-box representations differ in the DNN (significant)": "dnn",
    "white/black-box representations differ in the brain (significant)": "brain",
    "human categorisation unaffected by either noise": "behaviour",
    "DNN accuracy degraded by the adversarial noise": "accuracy",
}


def scorecard_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claim rows as scorecard runs ({claim, holds, note}) and number rows as
    ({section, item, value, p, p_adjusted, test_n, note})."""
    runs = []
    for r in rows:
        if r["section"] == "claim":
            evidence = ", ".join(
                f"{k} {r[k]:.4g}" for k in ("value", "p", "p_adjusted") if r.get(k) is not None
            )
            parts = [f"{evidence} (n = {r['n']})", r.get("note")]
            if r["ours"] is None:  # not comparable: say so first
                parts.reverse()
            note = "; ".join(x for x in parts if x)
            runs.append({"claim": r["item"], "holds": r["ours"], "note": note})
        else:
            runs.append({**r, "test_n": r.get("n")})
    return runs


def scorecard_tables(numbers: list[dict[str, Any]]) -> list[Any]:
    """The scorecard's two tables: the abstract's claims (ours beside the paper's) and our
    numbers (the cells of ``numbers``)."""
    from repro.core.scorecard import Metric, Table

    return [
        Table(
            "The abstract's claims",
            keys=("claim",),
            metrics=(Metric("holds", text=True),),
            cells=[{"claim": c} for c in CLAIMS],
            counts=False,
        ),
        Table(
            "Our numbers",
            keys=("section", "item"),
            metrics=(Metric("value", 3), Metric("p", 4), Metric("p_adjusted", 4, "p adjusted")),
            cells=[{"section": r["section"], "item": r["item"]} for r in numbers],
            size_label="n",
            counts=False,
        ),
    ]


def write_report(
    stim_dir: str | os.PathLike[str],
    dnn_dir: str | os.PathLike[str],
    analysis_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    params: ReportParams | None = None,
    reported_file: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """The scorecard (``summary.csv``/``.md``/``.html``: the abstract's claims beside ours,
    then our numbers), figures and provenance (with ``params``) from the three steps' outputs."""
    from repro.core.scorecard import load_reported, write_scorecard
    from repro.fmri.stimuli import read_stimuli

    params = params or ReportParams()
    out = Path(out_dir)
    stim = read_stimuli(stim_dir)
    stim_meta = _read_json(Path(stim_dir) / "meta.json")
    dnn = _read_json(Path(dnn_dir) / "dnn.json")
    analysis = None if analysis_dir is None else _read_json(Path(analysis_dir) / "analysis.json")
    simulated = analysis is not None and bool(analysis.get("simulated"))
    claims = claim_rows(dnn, analysis, simulated, params.alpha)
    numbers = number_rows(stim_meta, dnn, analysis)
    reported = load_reported(reported_file) if reported_file else []
    write_scorecard(
        scorecard_tables(numbers), scorecard_runs(claims + numbers), reported,
        out / "summary.csv", out / "summary.md",
        "White- vs black-box adversarial examples: DNN and fMRI",
        _notes(len(stim.table), analysis, simulated), _figure_list(analysis, simulated),
        out / "summary.html",
    )  # fmt: skip
    _draw_figures(stim, dnn, Path(dnn_dir), analysis, analysis_dir, simulated, params, out)
    write_provenance(out / "provenance.json", to_dict(params), code_dir=Path(__file__).parent)
    return claims + numbers


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _notes(n_stimuli: int, analysis: dict[str, Any] | None, simulated: bool) -> list[str]:
    """The scorecard's notes: what the columns mean, the stimuli, where the brain data are
    from."""
    notes = [
        "holds reported: the abstract's qualitative claims, with their source; no numbers are "
        "public. holds ours: the same claim from our tests (evidence in the note).",
        f"{n_stimuli} stimuli: {n_stimuli // 3} clean images, each with a white-box "
        "and a black-box (transferred) version.",
        "p: permutation / sign-flip / McNemar p-values as described in docs/fmri-adv.md; "
        "p adjusted: corrected within each family; n: stimuli, source images or trials (a "
        "brain claim's note names the subjects); a claim and its test's detail row share n.",
    ]
    if analysis is not None and simulated:
        notes.append(
            "The fMRI data and human responses are simulated (repro-fmri simulate), not the "
            f"paper's: the brain and behaviour claims are {NOT_COMPARABLE} (the note gives "
            "what our test found on the simulated data)."
        )
    elif analysis is not None:
        notes.append("The fMRI data and human responses are measured (the BIDS dataset given).")
    return notes


def _figure_list(analysis: dict[str, Any] | None, simulated: bool) -> list[tuple[str, str]]:
    """The figures the scorecard lists, with their captions."""
    label = data_label(simulated)
    brain = f" ROIs from {label} fMRI data." if analysis is not None else ""
    listed = [
        ("figures/example_stimuli.png", "Clean images with their white- and black-box "
         "versions and the perturbations magnified."),
        ("figures/rdm_panels.png", "Representational dissimilarity matrices of the ROIs, the "
         f"model references and the network layers.{brain}"),
        ("figures/white_black_difference.png", "White- minus black-box representational "
         "difference per layer and ROI as an effect size (mean / sd over source images of "
         f"d(clean, white) - d(clean, black)), with significance.{brain}"),
    ]  # fmt: skip
    if analysis is not None:
        listed.append(
            ("figures/roi_layer_similarity.png", "Similarity of each ROI's RDM with each layer "
             f"and model RDM, with significance; {label} fMRI data.")
        )  # fmt: skip
    return listed


def _draw_figures(
    stim: Any,
    dnn: dict[str, Any],
    dnn_dir: Path,
    analysis: dict[str, Any] | None,
    analysis_dir: str | os.PathLike[str] | None,
    simulated: bool,
    params: ReportParams,
    out: Path,
) -> None:
    """Example stimuli, RDM panels, ROI x layer similarity and the white/black difference."""
    from repro.fmri import figures

    label = data_label(simulated)
    brain_data = label if analysis is not None else None
    figs = out / "figures"
    figures.example_stimuli(stim, figs / "example_stimuli.png")
    dnn_rdms = np.load(dnn_dir / "rdms.npz")
    panel = {str(k): dnn_rdms["rdms"][i] for i, k in enumerate(dnn_rdms["names"].tolist())}
    if analysis is not None:
        panel = {**_brain_panels(np.load(Path(analysis_dir) / "rdms.npz"), label), **panel}
        figures.roi_layer_plot(
            analysis["relatedness"],
            figs / "roi_layer_similarity.png",
            analysis["params"]["comparison"],
            params.alpha,
            data=label,
        )
    figures.rdm_panels(panel, stim, figs / "rdm_panels.png", brain_data=brain_data)
    figures.wb_plot(
        {
            f"{role} {dnn['networks'][role]['model']}": dnn["networks"][role]["wb_difference"]
            for role in _roles(dnn)
        },
        analysis["wb_difference"] if analysis is not None else [],
        figs / "white_black_difference.png",
        params.alpha,
        brain_data=brain_data,
    )


def _brain_panels(arr: Any, label: str) -> dict[str, np.ndarray]:
    """The group ROI RDMs, then the model RDMs, of the analysis's ``rdms.npz``."""
    rois = {f"ROI {r} ({label})": arr["group_rdms"][i] for i, r in enumerate(arr["rois"].tolist())}
    models = {
        n: arr["reference_rdms"][i]
        for i, n in enumerate(arr["reference_names"].tolist())
        if n.startswith("model/")
    }
    return {**rois, **models}
