"""``spart adapt``: one command from a corpus (and, optionally, real questions without answers) to an adapted
retriever, a tuned hybrid and a report, with no human label used for training, selection or tuning.

Stages (each recorded in ``<out>/adapt-state.json`` when it completes, so a rerun resumes at the first stage not
done; generation and training also resume *inside* the stage):

1. ``questions``: :func:`spart.generation.generate_questions` -> ``questions/`` (a BEIR pseudo data set);
2. ``audit``: :func:`spart.adaptation.audit.run_audit` on pseudo-dev: base, BM25 and their hybrid, plus each
   candidate teacher's rerank -> for ``method="art"`` the teacher and base-score interpolation weight ART will
   distil (the best rerank row), or the verdict that ART is not expected to help;
3. ``train``, one of two methods from the base encoder:

   - ``pairs``: contrastive fine-tuning on the (generated question, source passage) pairs of
     pseudo-train with in-batch and BM25 hard negatives -- Promptagator's recipe (Dai et al., 2022) with
     InPars-style round-trip filtering, and the trainer and loss of ``spart train few-shot``; the base model's
     pooling, normalisation, lengths and (for normalised models) a 0.05 temperature are kept;
   - ``art``: ART on the real questions plus pseudo-train (one shared tower, the evidence re-embedded every
     ``reindex_every`` steps, teacher scores cached in ``teacher-scores.sqlite``).

   ``art`` is the default when candidate teachers are given, ``pairs`` when none are (docs/adaptation.md): on
   pydocs ART toward Qwen2.5-Coder-0.5B's score mixed with the base's ended training +2.8 to +4.5 nDCG@10 above
   MiniLM in every run (p <= 0.02), where pairs stayed level (+0.1), and the audit on pseudo-dev decides whether
   ART trains at all; on wiki neither method moved MiniLM's trivia top-20;
4. ``select``: every exported checkpoint, re-saved with the base model's lengths, scored on pseudo-dev
   (and, for the report only, on ``report_dataset``); the rule of ``select`` picks ``model/``
   (:func:`spart.adaptation.selection.choose_checkpoint`; by default the last checkpoint, unless pseudo-dev finds
   an earlier one significantly better or the base at least as good);
5. ``hybrid``: the hybrid's fusion tuned on pseudo-dev for the selected model -> ``hybrid_qa.yaml``;
6. ``rerank``: when the audit found a teacher whose rerank of the base's top ``depth`` beats the base on
   pseudo-dev significantly (its call is "help"), ``rerank_qa.yaml``: the selected model's dense retrieval
   reranked by that teacher at the audit's best base-score weight (the LM reads every candidate at query time:
   a pipeline for when accuracy matters more than latency); otherwise the stage records why it wrote none;
7. ``expand``: with an ``expander`` LM, ``expand_qa.yaml``: the selected model's dense retrieval with each question
   averaged with the LM's closed-book answer (GAR / HyDE; one generation per question at query time). Pseudo-dev
   cannot judge it (an LM answering questions an LM wrote from the passages), so it is written as asked and, with
   a ``report_dataset``, measured there against the same model without expansion, for the report only;
8. ``report``: ``report.md`` + ``learning-curve.png`` (written again whenever an earlier stage ran).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from spart.adaptation.audit import DEFAULT_WEIGHTS, TEACHER_PASSAGE_TOKENS
from spart.adaptation.selection import SELECTION_RULES, choose_checkpoint
from spart.atomic import atomic_write
from spart.validation import check_positive_int

logger = logging.getLogger(__name__)

ART_GRAD_CACHE_CHUNK = 64  # passages encoded with their graph at once in an ART step
STAGES = ("questions", "audit", "train", "select", "hybrid", "rerank", "expand", "report")
STATE = "adapt-state.json"
METHODS = ("pairs", "art")
# ``student_view`` for a new run; a run recorded before the option existed wrote from whole passages (False).
STUDENT_VIEW_DEFAULT = True
METHOD_DEFAULTS = {"pairs": {"epochs": 3.0, "batch_size": 32}, "art": {"epochs": 2.0, "batch_size": 16}}
NORMALIZED_TEMPERATURE = 0.05  # the scale 20 sentence-transformers' MultipleNegativesRankingLoss uses


@dataclass
class AdaptOptions:
    """Everything ``spart adapt`` needs (the command line maps onto it one to one).

    :param corpus: passages (DPR TSV or BEIR corpus).
    :param out: the run directory.
    :param questions: real questions of the corpus's users (no answers), trained on with the generated ones.
    :param model: the base encoder (``None`` = the packaged MiniLM).
    :param method: ``"pairs"`` (contrastive fine-tuning on the generated pairs) or ``"art"``; ``None``: what the run
        in ``out`` recorded when it resumes one, else ``"art"`` when ``teachers`` are given (the audit then decides
        whether ART trains) and ``"pairs"`` when none are.
    :param teachers: candidate teachers, ``[LABEL=]MODEL`` (``smollm2`` = the packaged default; an encoder
        directory is an encoder teacher, see :mod:`spart.teacher.encoder`), audited on pseudo-dev;
        ``method="art"`` distils the best one (default ``["smollm2"]`` for ART, none for pairs).
    :param generator: the LM that writes questions (``None`` = the first LM teacher, else the packaged SmolLM2).
    :param num_passages: passages that get a generated question.
    :param instruction: the request to the question writer (``None``:
        :data:`spart.generation.prompts.DEFAULT_INSTRUCTION`); e.g. a quiz-style request when the users' questions
        describe an answer without naming it.
    :param student_view: show the question writer each passage as the student reads it in training (cut to
        the training ``passage_max_length`` of the base model's tokens; see
        :class:`~spart.generation.GenerationSettings`'s ``student_passage_tokens``) rather than whole. ``None``:
        what the run in ``out`` recorded when it resumes one (whole passages for a run recorded before the option
        existed), else :data:`STUDENT_VIEW_DEFAULT`.
    :param max_dev_questions: at most this many generated questions go to pseudo-dev (``None``: the
        ``dev_fraction`` alone); the audit reranks every pseudo-dev question's ``depth`` candidates with each
        teacher and selection re-scores pseudo-dev per checkpoint, so the cap bounds both when many questions are
        generated (the rest train).
    :param weights: base-score interpolation weights the audit tries.
    :param depth: candidates reranked in the audit.
    :param steps: training steps (``None``: ``epochs`` passes over the training questions or pairs).
    :param epochs / batch_size: ``None``: the method's default (:data:`METHOD_DEFAULTS`: pairs 3 epochs of 32,
        ART 2 epochs of 16 questions, the settings measured in ``docs/adaptation.md``).
    :param reindex_every: ART re-embeds the corpus every this many steps; ``0`` (default): the corpus is embedded
        once by the base encoder and the student's questions search that static index (cheaper than ART's
        schedule; the measured runs use it).
    :param fixed_candidates: ART's candidates are each question's top ``top_k`` under the base model, computed once
        (needs ``reindex_every=0``; see :class:`~spart.training.config.ARTTrainingConfig`): the list a rerank of the
        base reads, and every teacher score after the first epoch is a cache hit.
    :param query_tower_only: ART trains a separate query tower and keeps the base as the passage tower (needs
        ``reindex_every=0``; ``freeze_passage_tower`` of :class:`~spart.training.config.ARTTrainingConfig`): the
        static index is then never stale, and the adapted model embeds the corpus exactly as the base does.
    :param art_base_weight: ART's target is ``(1 - w) z(teacher) + w z(base)``; ``w`` is this fixed weight (0.5) or,
        with ``None``, the audit's best pseudo-dev weight (which overfits the pseudo-labels: see the docs).
    :param art_teacher_temperature: ART's target is divided by it before the softmax (ART: 1.0), or ``"auto"``
        (default): the temperature that makes the target as confident as the base student over its candidates (the
        same mean entropy; see :class:`~spart.training.config.ARTTrainingConfig`). Measured: 0.96 on the pydocs
        recipe (K = 8, the mixed target), where ART's 1.0 worked; 0.38 on wiki (K = 40, the pure teacher target),
        where 1.0 made the student collapse.
    :param passage_max_length: passage tokens in training (``None``: the base model's own; 128 for ART, which
        re-embeds its candidates every step, unless ``query_tower_only``).
    :param train_budget_minutes: stop training at the first step past this many minutes; the step reached is
        exported, and selection chooses among the base and the steps reached (the learning rate has not decayed
        to 0 then: the schedule is that of the planned steps).
    :param select: the selection rule (:mod:`spart.adaptation.selection`): ``"latest"`` keeps the end of the
        schedule unless an earlier checkpoint beats it significantly on pseudo-dev or the base scores at least as
        high there; ``"best"`` keeps the highest pseudo-dev score.
    :param report_dataset / report_split: a labelled set evaluated per checkpoint and with each pipeline written
        (hybrid, rerank: ``depth`` LM passes per question, expansion) *for the report only*.
    :param train_anyway: train even when the audit says no teacher reranks the base's candidates better.
    :param expander: an instruct LM (HF directory, hub id or GGUF) for ``expand_qa.yaml`` (``None``: no such
        pipeline); see :class:`~spart.components.expanders.AnswerQueryExpander`.
    :param expander_instruction: its request, with ``{question}`` (``None``: the component's default, "Answer this
        question in a few words."); e.g. "Answer this question about Python in two or three sentences." for docs.
    :param expander_max_new_tokens: longest answer.
    """

    corpus: str
    out: str
    questions: str | None = None
    model: str | None = None
    method: str | None = None
    teachers: list[str] = field(default_factory=list)
    generator: str | None = None
    num_passages: int = 600
    instruction: str | None = None
    student_view: bool | None = None
    filter_top_k: int = 20
    dev_fraction: float = 0.2
    max_dev_questions: int | None = 500
    generation_batch_size: int = 16
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    depth: int = 20
    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    top_k: int = 8
    reindex_every: int = 0
    fixed_candidates: bool = False
    query_tower_only: bool = False
    art_base_weight: float | None = 0.5
    art_teacher_temperature: float | str = "auto"
    lr: float = 2e-5
    exports: int = 4
    select: str = "latest"
    query_max_length: int = 32
    passage_max_length: int | None = None
    bm25_negatives: int = 10
    teacher_batch_size: int = 16
    seed: int = 0
    train_budget_minutes: float | None = None
    report_dataset: str | None = None
    report_split: str = "test"
    train_anyway: bool = False
    expander: str | None = None
    expander_instruction: str | None = None
    expander_max_new_tokens: int = 32
    progress: bool = True


def _chosen_when_started(options: AdaptOptions, recorded: dict[str, Any] | None) -> AdaptOptions:
    """``options`` with the settings left ``None`` decided: as the run recorded them when it resumes one (a run
    recorded before ``student_view`` existed wrote its questions from whole passages), by the defaults when it
    starts. So changing a default never stops a run begun under the old one from resuming as it began."""
    chosen: dict[str, Any] = {}
    if options.student_view is None:
        chosen["student_view"] = STUDENT_VIEW_DEFAULT if recorded is None else bool(recorded.get("student_view", False))
    if options.method is None:
        new = "art" if options.teachers else "pairs"
        chosen["method"] = new if recorded is None else recorded.get("method", new)
    return replace(options, **chosen)


class Adaptation:
    """Runs the stages of :class:`AdaptOptions` (see the module docstring)."""

    def __init__(self, options: AdaptOptions, generator: Any = None) -> None:
        """:param generator: the question writer (default: a :class:`~spart.generation.QuestionGenerator` of
        ``options.generator`` or the first teacher)."""
        path = Path(options.out) / STATE
        self.state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"stages": {}}
        recorded = self.state.get("options")
        options = _chosen_when_started(options, recorded)
        if options.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {options.method!r}")
        if options.art_base_weight is not None and not 0.0 <= options.art_base_weight <= 1.0:
            raise ValueError(f"art_base_weight must be in [0, 1] (or None: the audit's), got {options.art_base_weight}")
        if options.art_teacher_temperature != "auto" and not (
            isinstance(options.art_teacher_temperature, (int, float)) and options.art_teacher_temperature > 0
        ):
            raise ValueError(
                f"art_teacher_temperature must be a positive number or 'auto', got {options.art_teacher_temperature!r}"
            )
        if options.fixed_candidates and options.reindex_every:
            raise ValueError(
                f"fixed_candidates needs reindex_every=0 (got {options.reindex_every}): the candidates are the base "
                "model's top K over the index it built"
            )
        if options.query_tower_only and options.reindex_every:
            raise ValueError(
                f"query_tower_only needs reindex_every=0 (got {options.reindex_every}): the passage tower is the "
                "base's, so re-embedding the corpus would give the same index"
            )
        if options.expander_instruction is not None:
            from spart.components.expanders.answer_query_expander import check_instruction

            check_instruction(options.expander_instruction, "expander_instruction")
        check_positive_int(options.expander_max_new_tokens, "expander_max_new_tokens")
        if options.select not in SELECTION_RULES:
            raise ValueError(f"select must be one of {SELECTION_RULES}, got {options.select!r}")
        self.o = options
        self._generator = generator
        self._plain: dict[str, tuple[Any, float]] = {}  # model -> its dense run on the report set, s/question
        self.out = Path(options.out)
        self.out.mkdir(parents=True, exist_ok=True)
        current = json.loads(json.dumps(asdict(options)))
        if recorded is not None:
            # An option the run's state does not record is newer than the run: it is taken as given now.
            changed = {k for k in current if k != "progress" and k in recorded and recorded[k] != current[k]}
            if changed:
                raise ValueError(
                    f"{self.out} was started with other options ({', '.join(sorted(changed))}); "
                    "use another --out to adapt differently"
                )
        self.state["options"] = current
        self._save()

    @property
    def epochs(self) -> float:
        return self.o.epochs if self.o.epochs is not None else METHOD_DEFAULTS[self.o.method]["epochs"]

    @property
    def batch_size(self) -> int:
        return self.o.batch_size if self.o.batch_size is not None else METHOD_DEFAULTS[self.o.method]["batch_size"]

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        with atomic_write(self.out / STATE, "w", encoding="utf-8") as f:
            json.dump(self.state, f, indent=1)

    def done(self, stage: str) -> bool:
        return stage in self.state["stages"]

    def _finish(self, stage: str, seconds: float, **result: Any) -> None:
        self.state["stages"][stage] = {"seconds": round(seconds, 1), **result}
        self._save()

    def run(self) -> dict[str, Any]:
        ran = False
        for stage in STAGES:
            if self.done(stage) and not (stage == "report" and ran):  # the report shows every stage that ran
                logger.info("adapt: %s already done", stage)
                continue
            ran = True
            logger.info("adapt: %s", stage)
            start = time.perf_counter()
            result = getattr(self, f"stage_{stage}")()
            self._finish(stage, time.perf_counter() - start, **result)
        return self.state

    # ------------------------------------------------------------------ helpers
    @property
    def questions_dir(self) -> Path:
        return self.out / "questions"

    @property
    def train_dir(self) -> Path:
        return self.out / self.o.method

    def _teacher_specs(self):
        from spart.adaptation.audit import TeacherSpec

        teachers = self.o.teachers or (["smollm2"] if self.o.method == "art" else [])
        return [TeacherSpec.parse(t) for t in teachers]

    def _base(self) -> str:
        from spart.encoders.loading import packaged_minilm_path

        return self.o.model or str(packaged_minilm_path())

    @cached_property
    def _base_config(self):
        """The base encoder's pooling, normalisation and lengths (loaded once)."""
        from spart.encoders import DualEncoder

        return DualEncoder.load(self._base(), device="cpu").config

    def _pseudo_dev(self):
        from spart.evaluation.datasets import load_dataset

        return load_dataset(self.questions_dir, "pseudo-dev")

    def _report_dataset(self):
        if not self.o.report_dataset:
            return None
        from spart.evaluation.datasets import load_dataset

        return load_dataset(self.o.report_dataset, self.o.report_split)

    # ------------------------------------------------------------------ stages
    def stage_questions(self) -> dict[str, Any]:
        from spart.data import read_passages
        from spart.generation import GenerationPrompt, GenerationSettings, QuestionGenerator, generate_questions

        lms = [t for t in self._teacher_specs() if not t.is_encoder]  # an encoder teacher cannot write
        model = self.o.generator or (lms[0].model if lms else None)
        prompt = GenerationPrompt(instruction=self.o.instruction) if self.o.instruction else None
        generator = self._generator or QuestionGenerator(model, batch_size=self.o.generation_batch_size, prompt=prompt)
        settings = GenerationSettings(
            num_passages=self.o.num_passages,
            seed=self.o.seed,
            filter_model=self.o.model,
            filter_top_k=self.o.filter_top_k,
            dev_fraction=self.o.dev_fraction,
            max_dev_questions=self.o.max_dev_questions,
            student_passage_tokens=self._training_passage_max_length() if self.o.student_view else None,
        )
        passages = list(read_passages(self.o.corpus))
        stats = generate_questions(passages, self.questions_dir, generator, settings, progress=self.o.progress)
        if stats["pseudo-dev"] < 10 or stats["pseudo-train"] < 10:
            raise ValueError(
                f"only {stats['pseudo-train']} pseudo-train and {stats['pseudo-dev']} pseudo-dev questions survived "
                f"the round-trip filter (pass rate {stats['filter_pass_rate']:.0%}); raise --num-passages or "
                "--filter-top-k"
            )
        instruction = getattr(getattr(generator, "prompt", None), "instruction", None)
        return {"generator": model or "smollm2", "instruction": instruction, "stats": stats}

    def stage_audit(self) -> dict[str, Any]:
        from spart.adaptation.audit import run_audit
        from spart.evaluation.runs import write_json

        report = run_audit(
            self._pseudo_dev(),
            model=self.o.model,
            teachers=self._teacher_specs(),
            weights=self.o.weights,
            depth=self.o.depth,
            cache_path=str(self.out / "teacher-scores.sqlite"),
            teacher_batch_size=self.o.teacher_batch_size,
            progress=self.o.progress,
        )
        write_json(self.out / "audit-pseudo-dev.json", report.to_dict())
        if not report.verdicts:
            return {"teacher": None, "weight": None, "call": None, "verdict": None}
        best_label, best = max(report.verdicts.items(), key=lambda kv: kv[1]["delta"])
        return {"teacher": best_label, "weight": best["weight"], "call": best["call"], "verdict": best["text"]}

    def _training_questions(self) -> Path:
        lines = []
        if self.o.questions:
            from spart.training.art_data import load_questions

            lines += load_questions(self.o.questions)
        lines += (self.questions_dir / "pseudo-train-questions.txt").read_text(encoding="utf-8").splitlines()
        path = self.out / "train-questions.txt"
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.writelines(q.replace("\n", " ") + "\n" for q in lines if q.strip())
        return path

    def _steps(self, items: int) -> tuple[int, list[int]]:
        """Training steps for ``items`` examples, and the steps exported for selection."""
        import math

        steps = self.o.steps or max(1, math.ceil(self.epochs * items / self.batch_size))
        exports = sorted({0, steps, *(round(steps * i / self.o.exports) for i in range(1, self.o.exports))})
        return steps, exports

    def stage_train(self) -> dict[str, Any]:
        result = self._train_pairs() if self.o.method == "pairs" else self._train_art()
        if not result.get("skipped"):
            # What was exported (a time budget may have stopped the run early, exporting the step it reached).
            exported = sorted(int(p.name.split("-")[1]) for p in (self.train_dir / "models").glob("step-*"))
            planned_end = result["steps"]
            result["exports"] = [0, *(s for s in exported if 0 < s <= planned_end)]
            result["stopped_at"] = max(result["exports"])
            if result["stopped_at"] < planned_end:
                logger.warning(
                    "adapt: the time budget stopped training at step %d of %d", result["stopped_at"], planned_end
                )
        return result

    def _common_training_options(self, steps: int, exports: list[int]) -> dict[str, Any]:
        budget = self.o.train_budget_minutes
        return dict(
            output_dir=self.train_dir,
            model=self._base(),
            shared=True,
            query_max_length=self.o.query_max_length,
            batch_size=self.batch_size,
            lr=self.o.lr,
            warmup_ratio=0.1,
            max_steps=steps,
            checkpoint_every=max(1, min(10, steps // 4)),
            log_every=2,
            export_steps=exports,
            seed=self.o.seed,
            progress=self.o.progress,
            time_budget_s=None if budget is None else 60.0 * budget,
        )

    def _train_pairs(self) -> dict[str, Any]:
        from spart.training.config import ContrastiveTrainingConfig
        from spart.training.registry import run_training

        n_pairs = self.state["stages"]["questions"]["stats"]["pseudo-train"]  # one source passage per question
        steps, exports = self._steps(n_pairs)
        base = self._base_config
        config = ContrastiveTrainingConfig(
            **self._common_training_options(steps, exports),
            pooling=base.pooling,
            normalize=base.normalize,
            temperature=NORMALIZED_TEMPERATURE if base.normalize else 1.0,
            passage_max_length=self._training_passage_max_length(),
            data={
                "kind": "pairs",
                "beir_dir": self.questions_dir,
                "split": "pseudo-train",
                "bm25_negatives": self.o.bm25_negatives,
            },
        )
        run_training("few-shot", config, resume=True)
        return {"method": "pairs", "steps": steps, "pairs": n_pairs, "exports": exports}

    def _training_passage_max_length(self) -> int:
        """Passage tokens the student reads in training: ``passage_max_length``, else the base model's own for
        pairs; ART re-embeds b x K passages a step, and 128 tokens keep that affordable, unless a frozen passage
        tower embeds the corpus once, at the length the adapted model will be deployed with (the base's)."""
        if self.o.passage_max_length:
            return self.o.passage_max_length
        own = self._base_config.passage_max_length
        return 128 if self.o.method == "art" and not self.o.query_tower_only else own

    def _train_art(self) -> dict[str, Any]:
        from spart.training.config import ARTTrainingConfig
        from spart.training.registry import run_training

        audit = self.state["stages"]["audit"]
        if audit["call"] == "no" and not self.o.train_anyway:
            logger.warning("adapt: %s The base model is kept.", audit["verdict"])
            return {"method": "art", "skipped": True, "reason": audit["verdict"]}
        spec = next(t for t in self._teacher_specs() if t.label == audit["teacher"])
        questions = self._training_questions()
        n_questions = sum(1 for _ in open(questions, encoding="utf-8"))
        steps, exports = self._steps(n_questions)
        base = self._base()
        weight = audit["weight"] if self.o.art_base_weight is None else self.o.art_base_weight
        config = ARTTrainingConfig(
            **{**self._common_training_options(steps, exports), "shared": not self.o.query_tower_only},
            questions=questions,
            evidence=Path(self.o.corpus),
            top_k=self.o.top_k,
            reindex_every=self.o.reindex_every,
            fixed_candidates=self.o.fixed_candidates,
            freeze_passage_tower=self.o.query_tower_only,
            teacher_temperature=self.o.art_teacher_temperature,
            passage_max_length=self._training_passage_max_length(),
            # GradCache over the batch x top_k passages: one chunk's activations instead of all of them
            # (benchmarks/bench_art_memory.py: 16 x 32 passages, 6.3 GB -> 1.2 GB per step in bf16, no slower).
            grad_cache_chunk=ART_GRAD_CACHE_CHUNK,
            teacher={
                "model": spec.model,
                "kind": "encoder" if spec.is_encoder else "lm",
                "gguf_file": spec.gguf_file,
                "batch_size": self.o.teacher_batch_size,
                "max_passage_tokens": TEACHER_PASSAGE_TOKENS,
                "cache": self.out / "teacher-scores.sqlite",
                "base_weight": weight,
                "base_model": base,
            },
        )
        run_training("art", config, resume=True)
        return {
            "method": "art",
            "steps": steps,
            "questions": n_questions,
            "exports": exports,
            "teacher": spec.label,
            "base_weight": weight,
        }

    def _deployable(self, step_dir: Path, target: Path) -> Path:
        """The checkpoint re-saved with the base model's own lengths (training may use shorter ones)."""
        from spart.encoders import DualEncoder

        if (target / "spart.json").exists():
            return target
        base = self._base_config
        encoder = DualEncoder.load(
            step_dir, device="cpu", passage_max_length=base.passage_max_length, query_max_length=base.query_max_length
        )
        return encoder.save(target)

    def _evaluate(self, model: str | None, dataset, pipeline: str = "dense_qa", **overrides: Any):
        from spart.evaluation.evaluate import evaluate_pipeline
        from spart.evaluation.loading import load_any_pipeline
        from spart.evaluation.stores import ensure_store

        store = ensure_store(dataset, model=model, progress=self.o.progress)
        ks = (1, 5, 20, 100)
        result = evaluate_pipeline(
            load_any_pipeline(pipeline, **_dense_overrides(store, model), **overrides),
            dataset,
            system=str(model) if pipeline == "dense_qa" else f"{model} ({pipeline})",
            top_k=100,
            ks=ks,
            show_progress=self.o.progress,
        )
        return result

    def stage_select(self) -> dict[str, Any]:
        from spart.evaluation.datasets import BEIR

        dev, real = self._pseudo_dev(), self._report_dataset()
        objective = "ndcg@10"
        datasets = {"pseudo_dev": dev, "report": real} if real is not None else {"pseudo_dev": dev}
        results: dict[Any, dict[str, Any]] = {}  # step -> data set -> SystemResult, for the paired tests

        def point(step, model):
            results[step] = {name: self._evaluate(model, data) for name, data in datasets.items()}
            return {"step": step, "model": model, **{name: r.summary for name, r in results[step].items()}}

        curve = [point("base", self.o.model)]
        train = self.state["stages"]["train"]
        if not train.get("skipped"):
            for step in train["exports"]:
                if step == 0:
                    continue
                source = self.train_dir / "models" / f"step-{step:08d}"
                curve.append(point(step, str(self._deployable(source, self.out / "checkpoints" / f"step-{step:08d}"))))
        chosen, selection = choose_checkpoint(
            [p["step"] for p in curve],
            {step: r["pseudo_dev"] for step, r in results.items()},
            dev,
            objective=objective,
            rule=self.o.select,
        )
        best = next(p for p in curve if p["step"] == chosen)
        versus_base = {}
        if best["step"] != "base":
            for name, data in datasets.items():
                versus_base[name] = versus_base_table(results["base"][name], results[best["step"]][name], data)
        target = self.out / "model"
        if best["model"] is not None:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(best["model"], target)
        report_metric = None
        if real is not None:
            report_metric = "ndcg@10" if real.kind == BEIR else "top20"
        return {
            "curve": curve,
            "selected": best["step"],
            "model": str(target) if best["model"] else None,
            "objective": objective,
            "selection": selection,
            "report_metric": report_metric,
            "versus_base": versus_base,
        }

    def stage_hybrid(self) -> dict[str, Any]:
        from spart.evaluation.loading import load_any_pipeline
        from spart.evaluation.stores import ensure_store
        from spart.evaluation.tuning import tune_fusion

        dev = self._pseudo_dev()
        model = self.state["stages"]["select"]["model"] or self.o.model
        store = ensure_store(dev, model=model, progress=self.o.progress)
        pipeline = load_any_pipeline("hybrid_qa", **_dense_overrides(store, model))
        tuned = tune_fusion(pipeline, dev, show_progress=self.o.progress)
        with atomic_write(self.out / "hybrid_qa.yaml", "w", encoding="utf-8") as f:
            f.write(pipeline.dumps())
        return {
            "mode": tuned.best.mode,
            "weights": list(tuned.best.weights),
            "pseudo_dev": tuned.best.summary,
            "store": str(store),
            "pipeline": "hybrid_qa.yaml",
            **self._versus_plain(model, self.out / "hybrid_qa.yaml"),
        }

    def stage_rerank(self) -> dict[str, Any]:
        from spart.evaluation.loading import load_any_pipeline

        audit = self.state["stages"]["audit"]
        if audit.get("teacher") is None:
            return {"skipped": "no teacher was audited (pass --teacher)"}
        if audit.get("call") != "help":
            return {"skipped": f"the audit does not expect {audit['teacher']}'s rerank to help: {audit['verdict']}"}
        spec = next(t for t in self._teacher_specs() if t.label == audit["teacher"])
        model = self.state["stages"]["select"]["model"] or self.o.model
        weight = float(audit["weight"])
        # as audited: the same scores (an LM's from the same cache, at the same passage budget)
        name, ranker = replace(spec, model=_portable(spec.model)).rerank_pipeline(
            weight=weight,
            batch_size=self.o.teacher_batch_size,
            cache_path=str((self.out / "teacher-scores.sqlite").resolve()),
        )
        components = {"ranker": ranker, "dense_retriever": {"top_k": self.o.depth}}
        overrides = _dense_overrides(self.state["stages"]["hybrid"]["store"], model)
        pipeline = load_any_pipeline(name, components=components, **overrides)
        with atomic_write(self.out / "rerank_qa.yaml", "w", encoding="utf-8") as f:
            f.write(pipeline.dumps())
        result = {"teacher": spec.label, "weight": weight, "depth": self.o.depth, "verdict": audit["verdict"]}
        # one LM pass per candidate of every labelled question (scores shared with the audit through the cache)
        return {
            **result,
            "pipeline": "rerank_qa.yaml",
            **self._versus_plain(model, self.out / "rerank_qa.yaml", self.o.depth),
        }

    def stage_expand(self) -> dict[str, Any]:
        from spart.evaluation.loading import load_any_pipeline

        if not self.o.expander:
            return {"skipped": "no expander LM given (--expander)"}
        model = self.state["stages"]["select"]["model"] or self.o.model
        expander: dict[str, Any] = {
            "model": _portable(self.o.expander),
            "max_new_tokens": self.o.expander_max_new_tokens,
        }
        if self.o.expander_instruction is not None:
            expander["instruction"] = self.o.expander_instruction
        components = {"expander": expander}
        overrides = _dense_overrides(self.state["stages"]["hybrid"]["store"], model)
        pipeline = load_any_pipeline("dense_expand_qa", components=components, **overrides)
        with atomic_write(self.out / "expand_qa.yaml", "w", encoding="utf-8") as f:
            f.write(pipeline.dumps())
        # one LM answer per labelled question: the only judge of expansion here
        measured = self._versus_plain(model, self.out / "expand_qa.yaml")
        return {"expander": self.o.expander, "pipeline": "expand_qa.yaml", **measured}

    def _versus_plain(self, model: str | None, pipeline: Path, depth: int | None = None) -> dict[str, Any]:
        """A pipeline this run wrote against the same model's plain dense retrieval on ``report_dataset`` (report
        only; ``{}`` without one): ``report_metric`` (nDCG@10; top-20 accuracy on DPR sets, top-5 when a rerank of
        ``depth`` <= 20 candidates cannot change top-20), ``versus_plain`` (every metric, paired p-values) and
        ``seconds_per_question`` (what a user pays per query, loads included: the latency side of the gain)."""
        from spart.evaluation.datasets import BEIR

        real = self._report_dataset()
        if real is None:
            return {}
        if str(model) not in self._plain:  # one dense run serves the hybrid, rerank and expansion stages
            start = time.perf_counter()
            result = self._evaluate(model, real)
            self._plain[str(model)] = (result, (time.perf_counter() - start) / len(result.per_query))
        plain, plain_seconds = self._plain[str(model)]
        start = time.perf_counter()
        measured = self._evaluate(model, real, str(pipeline))
        seconds = (time.perf_counter() - start) / len(measured.per_query)
        metric = "ndcg@10" if real.kind == BEIR else ("top5" if depth is not None and depth <= 20 else "top20")
        return {
            "report_metric": metric,
            "versus_plain": versus_base_table(plain, measured, real),
            "seconds_per_question": {"plain": plain_seconds, "pipeline": seconds},
        }

    def stage_report(self) -> dict[str, Any]:
        from spart.adaptation.report import write_report

        path = write_report(self.out, self.state)
        return {"report": str(path)}


def versus_base_table(base, selected, dataset) -> dict[str, Any]:
    """The selected model against the base on one data set: every metric's two means and the paired p-value
    (:func:`~spart.evaluation.significance.baseline_significance`: ranx's t-test on BEIR sets, a paired t-test
    on the top-k hit vectors of DPR sets).

    :returns: ``{"test": ..., "n_queries": n, "rows": {metric: {"base": x, "selected": y, "p": p}}}``.
    """
    from spart.evaluation.significance import baseline_significance

    significance = baseline_significance([base, selected], dataset)
    p_values = significance["p_values"][selected.system]
    rows = {m: {"base": base.summary[m], "selected": selected.summary[m], "p": p_values[m]} for m in base.summary}
    return {"test": significance["test"], "n_queries": len(base.per_query), "rows": rows}


def _dense_overrides(store, model: str | None) -> dict[str, str]:
    """``load_pipeline`` overrides for a pipeline over ``store`` with ``model`` (``None``: the packaged default)."""
    store = _portable(str(store))
    return {"store": store, "model": _portable(model)} if model else {"store": store}


def _portable(location: str | None) -> str | None:
    """A model or file location as a written pipeline YAML must hold it, to load from any working directory: a
    local path made absolute; a hub id (or ``None``) unchanged."""
    if location is None:
        return None
    path = Path(location).expanduser()
    return str(path.resolve()) if path.exists() else location
