"""The documents suite: Great Expectations checks on what the reader produced, and a report of what failed.

One table row per path (documents and rejected files alike), one expectation per rule. Each expectation carries
its readable rule name in `meta["rule"]`; failing rows come back by `doc_id` (result_format COMPLETE with
`unexpected_index_column_names`), so a failure always names a file. Rows from `rejected` fail "readable" under
their reader rule ("binary", "too_large", "symlink_escapes_root", ...): nothing the reader refused is dropped
silently.

Documents the reader changed or could only partly use (decoded from a guessed encoding, front matter that does
not parse) pass or fail like any other; their notes are carried into `ValidationReport.notes` so a run reports
every such file by name.

Exact duplicates (same `content_md5` under two paths): the first path in sorted order passes, the others fail
"duplicate_content". Keeping one copy loses nothing from search (the text is indexed once), avoids citing the
same passage twice, and sorting makes the survivor the same on every run whatever the listing order. Flagging
every copy would push the content out of the index altogether. Empty files are left out of this check: they
already fail "empty_text" and would otherwise all be "duplicates" of each other.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

from lorag.config import ValidationParams
from lorag.corpus.model import DocKind, Document, Rejected

ALL_KINDS: tuple[str, ...] = get_args(DocKind)
_SHOWN_IN_ERROR = 5


class ValidationFailed(RuntimeError):
    """Too many documents failed the suite; the message names them and says how to proceed."""


@dataclass(frozen=True)
class DocFailure:
    doc_id: str
    rule: str  # "empty_text", "too_short", "too_long", "kind_not_allowed", "duplicate_doc_id",
    # "duplicate_content", or the reader's rule for an unreadable file ("binary", "too_large", ...)
    detail: str


@dataclass(frozen=True)
class DocNote:
    """Reported, not a failure: e.g. "transcoded" (decoded from a guessed encoding), "front_matter_invalid"."""

    doc_id: str
    rule: str
    detail: str


@dataclass
class ValidationReport:
    total: int  # distinct paths checked (documents + rejected)
    passed: list[str]  # doc_ids with no failure
    failures: list[DocFailure] = field(default_factory=list)
    failure_ratio: float = 0.0  # failed paths / total
    max_failure_ratio: float = 0.0
    notes: list[DocNote] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure_ratio <= self.max_failure_ratio

    @property
    def failed_ids(self) -> list[str]:
        return sorted({f.doc_id for f in self.failures})

    def summary(self) -> dict[str, float]:
        """Flat numbers for MLflow metrics: totals, the ratio and its threshold, and a count per rule."""
        out: dict[str, float] = {
            "docs_total": self.total,
            "docs_passed": len(self.passed),
            "docs_failed": len(self.failed_ids),
            "failure_ratio": self.failure_ratio,
            "max_failure_ratio": self.max_failure_ratio,
            "validation_ok": float(self.ok),
        }
        for failure in self.failures:
            key = f"failed_{failure.rule}"
            out[key] = out.get(key, 0) + 1
        for note in self.notes:
            key = f"noted_{note.rule}"
            out[key] = out.get(key, 0) + 1
        return out

    def rules_by_file(self) -> dict[str, list[DocFailure]]:
        """Each failed path with all the rules it failed, paths sorted: one entry per file, not per rule."""
        by_file: dict[str, list[DocFailure]] = {}
        for failure in sorted(self.failures, key=lambda f: (f.doc_id, f.rule)):
            by_file.setdefault(failure.doc_id, []).append(failure)
        return by_file

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def validate_documents(
    documents: list[Document],
    rejected: list[Rejected],
    params: ValidationParams,
    allowed_kinds: Iterable[str] = ALL_KINDS,
    corpus_size: int | None = None,
) -> ValidationReport:
    """Run the documents suite over what the reader returned; never raises for bad documents (see require_ok).

    `corpus_size` is the number of documents in the whole snapshot when only the changed ones are checked (an
    incremental re-index): the failure ratio is taken over the corpus, so one bad edit among hundreds of
    unchanged pages does not fail the run, while a folder full of broken files still does.
    """
    allowed = tuple(sorted(set(allowed_kinds)))
    table = build_table(documents, rejected)
    failures: list[DocFailure] = []
    if len(table):
        definition = _suite(params.min_chars, params.max_chars, allowed)
        result = definition.run(
            batch_parameters={"dataframe": table},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["doc_id"]},
        )
        failures = _failures(result, table, params, allowed)
    ids = list(dict.fromkeys(table["doc_id"])) if len(table) else []
    failed = {f.doc_id for f in failures}
    return ValidationReport(
        total=len(ids),
        passed=[i for i in ids if i not in failed],
        failures=failures,
        failure_ratio=len(failed) / max(len(ids), corpus_size or 0) if ids else 0.0,
        max_failure_ratio=params.max_failure_ratio,
        notes=[DocNote(d.doc_id, n.rule, n.detail) for d in _by_id(documents) for n in d.notes],
    )


def _by_id(documents: list[Document]) -> list[Document]:
    return sorted(documents, key=lambda d: d.doc_id)


def build_table(documents: list[Document], rejected: list[Rejected]) -> Any:
    """The pandas frame the suite reads: one row per path; reader columns are null for rejected rows."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    first_by_md5: dict[str, str] = {}
    for doc in sorted(documents, key=lambda d: d.doc_id):
        stripped = len(doc.text.strip())
        original = first_by_md5.setdefault(doc.content_md5, doc.doc_id) if stripped else doc.doc_id
        rows.append({
            "doc_id": doc.doc_id, "kind": doc.kind, "n_chars": len(doc.text), "text_stripped_len": stripped,
            "readable": True, "read_error": None, "read_detail": None,
            "first_copy": original == doc.doc_id, "duplicate_of": None if original == doc.doc_id else original,
        })
    for rej in sorted(rejected, key=lambda r: r.doc_id):
        rows.append({
            "doc_id": rej.doc_id, "kind": None, "n_chars": None, "text_stripped_len": None,
            "readable": False, "read_error": rej.rule, "read_detail": rej.detail,
            "first_copy": None, "duplicate_of": None,
        })
    columns = ["doc_id", "kind", "n_chars", "text_stripped_len", "readable", "read_error", "read_detail",
               "first_copy", "duplicate_of"]
    return pd.DataFrame(rows, columns=columns)


@functools.lru_cache(maxsize=8)
def _suite(min_chars: int, max_chars: int, allowed: tuple[str, ...]) -> Any:
    """The validation definition for these thresholds, built once per process (GX import alone is ~3 s)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("lorag_docs").add_dataframe_asset("documents")
    suite = context.suites.add(gx.ExpectationSuite(name="lorag_documents"))
    ex = gx.expectations
    # Map expectations skip nulls, so rows of rejected files fail only "readable".
    for expectation in (
        ex.ExpectColumnValuesToBeUnique(column="doc_id", meta={"rule": "duplicate_doc_id"}),
        ex.ExpectColumnValuesToBeInSet(column="readable", value_set=[True], meta={"rule": "readable"}),
        ex.ExpectColumnValuesToBeBetween(column="text_stripped_len", min_value=1, meta={"rule": "empty_text"}),
        ex.ExpectColumnValuesToBeBetween(column="n_chars", min_value=min_chars, meta={"rule": "too_short"}),
        ex.ExpectColumnValuesToBeBetween(column="n_chars", max_value=max_chars, meta={"rule": "too_long"}),
        ex.ExpectColumnValuesToBeInSet(column="kind", value_set=list(allowed), meta={"rule": "kind_not_allowed"}),
        ex.ExpectColumnValuesToBeInSet(column="first_copy", value_set=[True], meta={"rule": "duplicate_content"}),
    ):
        suite.add_expectation(expectation)
    batch = asset.add_batch_definition_whole_dataframe("all")
    return context.validation_definitions.add(gx.ValidationDefinition(name="lorag_documents", data=batch, suite=suite))


def _failures(result: Any, table: Any, params: ValidationParams, allowed: tuple[str, ...]) -> list[DocFailure]:
    """One DocFailure per (failing row, expectation), named by doc_id and readable rule."""
    # Keyed by doc_id (what GX hands back); when a path is both read and rejected, the read row explains
    # the content rules and the rejected row the "readable" rule.
    rows: dict[tuple[str, bool], dict[str, Any]] = {}
    for row in table.to_dict("records"):
        rows.setdefault((row["doc_id"], bool(row["readable"])), row)
    counts = table["doc_id"].value_counts().to_dict()
    seen: set[tuple[str, str]] = set()
    out: list[DocFailure] = []
    for res in result.results:
        rule = res.expectation_config.meta["rule"]
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(f"the documents suite could not evaluate '{rule}': {res.exception_info}")
        if res.success:
            continue
        index_list = res.result.get("unexpected_index_list")
        if not index_list:
            raise RuntimeError(f"'{rule}' failed but GX named no rows (result: {res.result}); cannot report files")
        for entry in index_list:
            doc_id = entry["doc_id"] if isinstance(entry, dict) else table.iloc[entry]["doc_id"]
            row = rows.get((doc_id, rule != "readable")) or rows[(doc_id, rule == "readable")]
            name, detail = _explain(rule, row, counts[doc_id], params, allowed)
            if (doc_id, name) not in seen:
                seen.add((doc_id, name))
                out.append(DocFailure(doc_id, name, detail))
    return sorted(out, key=lambda f: (f.doc_id, f.rule))


def _explain(
    rule: str, row: dict[str, Any], count: int, p: ValidationParams, allowed: tuple[str, ...]
) -> tuple[str, str]:
    """Readable rule name and detail for one failing row (details come from our table, not GX's partial lists)."""
    if rule == "readable":
        return str(row["read_error"]), str(row["read_detail"])
    details = {
        "duplicate_doc_id": f"doc_id appears {count} times",
        "empty_text": "text is empty or whitespace only",
        "too_short": f"{row['n_chars']:.0f} characters < validation.min_chars {p.min_chars}",
        "too_long": f"{row['n_chars']:.0f} characters > validation.max_chars {p.max_chars}",
        "kind_not_allowed": f"kind {row['kind']!r} not in {list(allowed)}",
        "duplicate_content": f"same bytes as {row['duplicate_of']} (that copy is kept)",
    }
    return rule, details[rule]


def require_ok(report: ValidationReport) -> ValidationReport:
    """Raise ValidationFailed when the failure ratio is over the threshold; return the report otherwise."""
    if report.ok:
        return report
    ids = report.failed_ids
    shown = [f"{f.doc_id} ({f.rule})" for f in report.failures if f.doc_id in ids[:_SHOWN_IN_ERROR]]
    more = f" and {len(ids) - _SHOWN_IN_ERROR} more" if len(ids) > _SHOWN_IN_ERROR else ""
    raise ValidationFailed(
        f"{len(ids)} of {report.total} documents failed validation ({report.failure_ratio:.1%} > "
        f"validation.max_failure_ratio {report.max_failure_ratio:.1%}): {', '.join(shown)}{more}. "
        "Fix or remove those files in the docs folder (the quarantine folder holds copies and report.json), "
        "or raise validation.max_failure_ratio in params.yaml if they are expected."
    )
