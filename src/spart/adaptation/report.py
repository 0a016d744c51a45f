"""``report.md`` and ``learning-curve.png`` of a ``spart adapt`` run, from its recorded state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spart.adaptation.selection import SELECTION_ALPHA
from spart.atomic import atomic_write

# what the report's stage table shows of each stage's record
STAGE_SUMMARY_KEYS = (
    "generator",
    "method",
    "teacher",
    "weight",
    "call",
    "steps",
    "stopped_at",
    "selected",
    "mode",
    "expander",
)


def _fmt(value: float | None, dpr: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" if dpr else f"{value:.3f}"


def plot_curve(curve: list[dict[str, Any]], path: Path, report_metric: str | None) -> Path | None:
    """Pseudo-dev nDCG@10 (and the report set's metric) per exported step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = [0 if p["step"] == "base" else p["step"] for p in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [p["pseudo_dev"]["ndcg@10"] for p in curve], marker="o", label="pseudo-dev nDCG@10 (selection)")
    if report_metric and all("report" in p for p in curve):
        ax2 = ax.twinx()
        ax2.plot(
            steps,
            [p["report"][report_metric] for p in curve],
            marker="s",
            color="tab:orange",
            label=f"real labels {report_metric} (report only)",
        )
        ax2.set_ylabel(report_metric)
        ax2.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("pseudo-dev nDCG@10")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def selection_lines(selection: dict[str, Any] | None) -> list[str]:
    """Why the selected candidate was kept (:func:`spart.adaptation.selection.choose_checkpoint`'s record)."""
    if not selection:
        return []
    if selection["rule"] == "best":
        return ["", f"Rule `best`: the highest pseudo-dev {selection['objective']}."]
    lines = [
        "",
        f"Rule `latest`: the last step ({selection['latest']}) unless an earlier step beats it on pseudo-dev "
        f"{selection['objective']} with p < {selection['alpha']:g} (paired) or the base scores at least as high:",
        "",
        "| candidate | difference to the last step | p (paired) |",
        "|---|---|---|",
    ]
    for name, row in selection["versus"].items():
        lines.append(f"| {name} | {row['difference']:+.3f} | {row['p']:.3g} |")
    return lines


def versus_base_lines(select: dict[str, Any]) -> list[str]:
    """The section comparing the selected checkpoint with the base model, metric by metric, with paired p-values
    (empty when the base was kept or the run predates the comparison)."""
    tables = select.get("versus_base") or {}
    if not tables:
        return []
    names = {
        "pseudo_dev": "pseudo-dev (generated questions: used for selection)",
        "report": "real labels (report only)",
    }
    lines = ["", f"## The selected model (step {select['selected']}) vs the base", ""]
    lines += ["| data set | metric | base | selected | difference | p (paired) |", "|---|---|---|---|---|---|"]
    for name, table in tables.items():
        for metric, row in table["rows"].items():
            lines.append(f"| {names.get(name, name)}, {table['n_queries']} q. | {_comparison_cells(metric, row)} |")
    lines += ["", "p: paired t-test per question (ranx on BEIR sets; top-k hits on DPR sets)."]
    return lines


def _comparison_cells(metric: str, row: dict[str, float]) -> str:
    """``metric | base | selected | difference | p`` for one row of a :func:`versus_base_table` table."""
    dpr = metric.startswith("top")
    return (
        f"{metric} | {_fmt(row['base'], dpr)} | {_fmt(row['selected'], dpr)} | {_difference(metric, row)} "
        f"| {row['p']:.3g}"
    )


def _difference(metric: str, row: dict[str, float]) -> str:
    """The selected model's difference to the base, in the metric's unit (points for top-k accuracy)."""
    diff = row["selected"] - row["base"]
    return f"{100 * diff:+.1f}" if metric.startswith("top") else f"{diff:+.3f}"


def _change(metric: str, row: dict[str, float]) -> str:
    dpr = metric.startswith("top")
    return (
        f"{metric} {_fmt(row['base'], dpr)} -> {_fmt(row['selected'], dpr)} "
        f"({_difference(metric, row)}, p = {row['p']:.2g})"
    )


def verdict_lines(select: dict[str, Any] | None, alpha: float = SELECTION_ALPHA) -> list[str]:
    """The answer to "is the adapted model better than the encoder I had?", first in the report.

    Only the real labels (``--report-dataset``) can say yes: a gain on the held-out generated questions alone is
    reported as unproven, because generated questions favour a model trained on their like (docs/adaptation.md
    measured pseudo-dev gains of +0.03 to +0.09 nDCG@10 with the real labels level).

    :param select: the ``select`` stage's record (``None``: selection has not run; no lines).
    :param alpha: the significance level of "better" and "worse" (paired p-value on the report set).
    :returns: the section's Markdown lines.
    """
    if not select:
        return []
    lines = ["", "## Is it better than the encoder you had?", ""]
    if select["selected"] == "base":
        lines.append(
            "**No.** No trained checkpoint beat your base model on the held-out generated questions, so the run "
            "kept the base: deploy the encoder you had (the hybrid and rerank pipelines below use it)."
        )
        return lines
    tables = select.get("versus_base") or {}
    objective = select.get("objective", "ndcg@10")
    dev = tables.get("pseudo_dev", {}).get("rows", {}).get(objective)
    dev_change = _change(objective, dev) if dev else None
    metric = select.get("report_metric")
    real = tables.get("report", {}).get("rows", {}).get(metric) if metric else None
    if real is None:
        lines.append(
            f"**Not shown.** The selected model (step {select['selected']}) was chosen on the held-out generated "
            f"questions{f' ({dev_change})' if dev_change else ''}, which favour a model trained on their like: "
            "no evidence of a gain on your users' questions. Check it on a few labelled questions of yours before "
            "deploying it: `spart eval --pipeline dense_qa --model model --dataset DIR` against the same without "
            "`--model` (`--report-dataset` makes `spart adapt` do this, with paired p-values)."
        )
        return lines
    diff = real["selected"] - real["base"]
    if diff > 0 and real["p"] < alpha:
        head, advice = "**Yes.**", "deploy `model/`."
    elif diff < 0 and real["p"] < alpha:
        head, advice = "**No, it is worse.**", "keep the encoder you had."
    else:
        head = "**Not shown.**"
        advice = "the difference is not significant, so keep the encoder you had unless it helps elsewhere."
    lines.append(
        f"{head} On your labelled set (report only, {tables['report']['n_queries']} questions) the selected model "
        f"(step {select['selected']}) scores {_change(metric, real)}: {advice}"
        + (f" For comparison, on the held-out generated questions: {dev_change}." if dev_change else "")
    )
    return lines


def training_data_lines(model: str | None) -> list[str]:
    """What the base model's card says it was trained on, and what that means for adaptation.

    An encoder already trained on data like the user's has least to gain: all-MiniLM-L6-v2's card lists TriviaQA,
    SearchQA and 64M PAQ questions generated from Wikipedia; no recipe in docs/adaptation.md beat it on Wikipedia
    trivia, while the same recipe gained +3 to +4.5 nDCG@10 points on Python's documentation.

    :param model: the base model as given (``None``: the packaged all-MiniLM-L6-v2).
    :returns: the section's Markdown lines; none when the card declares no data sets (or there is no card).
    """
    from spart.encoders.loading import declared_training_data

    declared = declared_training_data(model or "all-MiniLM-L6-v2")
    if not declared:
        return []
    name = model or "all-MiniLM-L6-v2 (packaged)"
    return [
        "",
        "## What the base model was trained on",
        "",
        f"The model card of `{name}` lists {len(declared)} training data sets: {', '.join(declared)}. Where your "
        "corpus and questions are like one of these, the base was trained for them and adaptation has less to add "
        "(docs/adaptation.md: no recipe beat all-MiniLM-L6-v2 on Wikipedia trivia questions, whose like its card "
        "lists as trivia_qa, search_qa and PAQ_pairs; on Python's documentation the same recipe gained +3 to +4.5 "
        "nDCG@10 points).",
    ]


def expansion_lines(expand: dict[str, Any] | None) -> list[str]:
    """The query-expansion section: the pipeline written, and its measure on the labelled set when there is one.

    :param expand: the ``expand`` stage's record (``None`` or skipped: no lines).
    :returns: the section's Markdown lines.
    """
    if not expand or expand.get("skipped"):
        return []
    lines = [
        "",
        "## Query expansion",
        "",
        f"`{expand['pipeline']}`: the dense retriever searching with each question averaged with "
        f"`{expand['expander']}`'s closed-book answer (GAR / HyDE). The LM writes one answer per question at query "
        "time. It helps when the LM knows your domain, and the generated questions cannot tell (an LM answering "
        "questions an LM wrote from the passages), so only labelled questions judge it.",
    ]
    if not expand.get("versus_plain"):
        lines += [
            "",
            "Not measured: no labelled set (`--report-dataset`). Compare it on a few labelled questions of yours: "
            f"`spart eval --pipeline dense_qa --pipeline {expand['pipeline']} --dataset DIR`.",
        ]
        return lines
    return lines + measured_lines(expand, "expanded")


def measured_lines(record: dict[str, Any], name: str) -> list[str]:
    """A written pipeline against the same model's plain dense retrieval on the labelled set (the ``hybrid``,
    ``rerank`` and ``expand`` stages' ``versus_plain``): the metric table, the time per question and whether to
    use it (no lines when it was not measured).

    :param record: the stage's record.
    :param name: the pipeline's column heading (``"hybrid"``, ``"reranked"``, ``"expanded"``).
    """
    table = record.get("versus_plain")
    if not table:
        return []
    lines = ["", f"On your labelled set (report only, {table['n_queries']} questions):", ""]
    lines += [f"| metric | dense alone | {name} | difference | p (paired) |", "|---|---|---|---|---|"]
    lines += [f"| {_comparison_cells(metric, row)} |" for metric, row in table["rows"].items()]
    cost = record.get("seconds_per_question")
    if cost:
        spent = cost.get("pipeline", cost.get("expanded"))  # "expanded": runs recorded before the hybrid had one
        lines += [
            "",
            f"Time per question on this run's machine, model and LM loads included: {spent:.2f} s {name} "
            f"against {cost['plain']:.2f} s dense alone ({spent / max(cost['plain'], 1e-9):.0f}x).",
        ]
    metric = record.get("report_metric")
    row = table["rows"].get(metric) if metric else None
    if row is not None:
        better = row["selected"] > row["base"] and row["p"] < SELECTION_ALPHA
        lines += [
            "",
            f"{'**Use it**' if better else '**Not shown to help**'} on {metric}: {_change(metric, row)}"
            + ("." if better else "; keep the dense retrieval alone unless the cost is worth a gain elsewhere."),
        ]
    return lines


PIPELINE_FILES = (("hybrid", "hybrid_qa.yaml"), ("rerank", "rerank_qa.yaml"), ("expand", "expand_qa.yaml"))


def usage_lines(stages: dict[str, Any]) -> list[str]:
    """The "Use it" section: each pipeline the run wrote, loadable as it is (the YAMLs name this run's index, the
    selected encoder and the LMs by absolute path), and what the encoder is.

    :param stages: the run state's stage records.
    :returns: the section's Markdown lines.
    """
    written = [name for stage, name in PIPELINE_FILES if stages.get(stage) and not stages[stage].get("skipped")]
    lines = ["", "## Use it", ""]
    if written:
        lines += [
            "Each pipeline below searches this run's index with the encoder it chose, from any working directory:",
            "",
            "```python",
            "from spart.pipelines import load_pipeline, retrieve",
            "",
        ]
        lines += [
            f"pipe = load_pipeline('{name}')" + ("  # or" if i < len(written) - 1 else "")
            for i, name in enumerate(written)
        ]
        lines += ["docs = retrieve(pipe, 'your question')  # Documents, best first", "```", ""]
        lines.append(
            "Over another index of the same encoder: `load_pipeline('hybrid_qa.yaml', store='<FaissDocumentStore "
            "directory>')`."
        )
        lines.append("")
    select = stages.get("select")
    if not select:
        return lines
    if select["selected"] != "base":
        lines.append(
            "`model/` is the adapted encoder, a sentence-transformers directory: `SentenceTransformer('model')` loads "
            "it, and `spart index CORPUS --store DIR --model model` indexes a corpus with it."
        )
    else:
        where = "`model/` is a copy of it" if select.get("model") else "no `model/` was written (the packaged default)"
        lines.append(f"The run kept the base encoder: {where}; the pipelines above use it.")
    return lines


def rerank_cost_line(teachers: list[str], label: str) -> str:
    """What the rerank pipeline costs at query time, by the kind of teacher ``label`` names among ``teachers``
    (``[LABEL=]MODEL`` as given to ``spart adapt``)."""
    from spart.adaptation.audit import TeacherSpec
    from spart.teacher.encoder import is_encoder_model

    model = next((t.model for t in map(TeacherSpec.parse, teachers) if t.label == label), None)
    if is_encoder_model(model):
        return (
            "The teacher encoder embeds every candidate at query time. It was not used to index the corpus: "
            "indexing with it instead (`spart index CORPUS --store DIR --model <teacher>`) may rank better still, "
            "at its own encoding cost."
        )
    return "The LM reads every candidate at query time: use it where accuracy matters more than latency."


def _plain(values: dict[str, Any]) -> str:
    """``{"kept": 473, "teacher": "qwen"}`` as ``kept 473; teacher qwen`` for a table cell."""
    return "; ".join(f"{k} {v}" for k, v in values.items()) or "-"


def write_report(out: Path, state: dict[str, Any]) -> Path:
    """Write ``out/report.md`` (and the curve PNG); returns the report path."""
    stages, options = state["stages"], state["options"]
    lines = [f"# spart adapt: {Path(options['corpus']).name}"]
    lines += verdict_lines(stages.get("select"))
    lines += training_data_lines(options.get("model"))
    lines += ["", "## Stages", "", "| stage | wall time | result |", "|---|---:|---|"]
    for name, record in stages.items():
        summary = {k: v for k, v in record.items() if k in STAGE_SUMMARY_KEYS and v is not None}
        if name == "questions" and record.get("stats"):
            summary["kept"] = record["stats"].get("kept")
        lines.append(f"| {name} | {record['seconds'] / 60:.1f} min | {_plain(summary)} |")
    gen = stages.get("questions", {}).get("stats", {})
    if gen:
        lines += ["", "## Generated questions", ""]
        lines.append(
            f"{gen['passages']} passages -> {gen['parsed']} parsed questions -> {gen['kept']} kept by the round-trip "
            f"filter (pass rate {gen['filter_pass_rate']:.0%}); pseudo-train {gen['pseudo-train']}, pseudo-dev "
            f"{gen['pseudo-dev']}. Rejections: {_plain(gen['reasons'])}."
        )
        if options.get("student_view"):
            lines.append(
                "The question writer was shown each passage cut where the student's passage tower stops reading "
                "in training (`--student-view`)."
            )
    audit_path = out / "audit-pseudo-dev.json"
    if audit_path.exists():
        from spart.adaptation.audit import AuditReport

        audit = AuditReport(**json.loads(audit_path.read_text()))
        lines += ["", "## Audit on pseudo-dev (no human labels)", "", audit.to_markdown()]
    select = stages.get("select")
    if select:
        metric = select.get("report_metric")
        lines += ["", "## Learning curve (selection on pseudo-dev only)", ""]
        head = "| step | pseudo-dev nDCG@10 | pseudo-dev R@100 |" + (f" real {metric} (not used) |" if metric else "")
        lines += [head, "|---" * (head.count("|") - 1) + "|"]
        for p in select["curve"]:
            row = f"| {p['step']} | {_fmt(p['pseudo_dev']['ndcg@10'])} | {_fmt(p['pseudo_dev'].get('recall@100'))} |"
            if metric:
                row += f" {_fmt(p.get('report', {}).get(metric), metric.startswith('top'))} |"
            lines.append(row)
        lines.append("")
        lines.append(f"Selected: step {select['selected']} -> `{select['model'] or 'the base model'}`.")
        lines += selection_lines(select.get("selection"))
        if plot_curve(select["curve"], out / "learning-curve.png", metric):
            lines += ["", "![learning curve](learning-curve.png)"]
        lines += versus_base_lines(select)
    hybrid = stages.get("hybrid")
    if hybrid:
        lines += [
            "",
            "## Hybrid",
            "",
            f"Fusion tuned on pseudo-dev: {hybrid['mode']} {hybrid['weights']} "
            f"(pseudo-dev nDCG@10 {_fmt(hybrid['pseudo_dev'].get('ndcg@10'))}); pipeline `hybrid_qa.yaml`.",
        ]
        lines += measured_lines(hybrid, "hybrid")
    rerank = stages.get("rerank")
    if rerank:
        lines += ["", "## Rerank", ""]
        if rerank.get("skipped"):
            lines.append(f"No rerank pipeline: {rerank['skipped']}")
        else:
            lines.append(
                f"`rerank_qa.yaml`: the dense retriever's top {rerank['depth']} reranked by {rerank['teacher']} "
                f"(base-score weight {rerank['weight']:g}), chosen by the audit on pseudo-dev: {rerank['verdict']} "
                + rerank_cost_line(options.get("teachers") or [], rerank["teacher"])
            )
            lines += measured_lines(rerank, "reranked")
    lines += expansion_lines(stages.get("expand"))
    lines += usage_lines(stages)
    path = out / "report.md"
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
