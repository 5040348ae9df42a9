"""Safe reading of a documents folder: what may be read, and how its bytes become text.

Rules a file can be rejected under (the `Rejected.rule` values this module produces):
  symlink_escapes_root  a symlink (or a path swapped for one while reading) leads outside the docs root
  symlink_loop          a symlinked directory leads back into one of its own ancestors
  broken_symlink        a symlink whose target does not exist
  unsupported_type      not a regular file (FIFO, socket, device); with corpus.other_files=quarantine, also a
                        suffix that is not in corpus.suffixes
  too_large             more than `max_bytes`; the file is not read
  binary                NUL bytes, or control characters where text should be
  invalid_encoding      not UTF-8 (with or without a BOM) nor UTF-16 with a BOM, and either encoding detection
                        is off (corpus.detect_encoding, the default) or it found no confident guess
  unreadable            the operating system refused (permissions, vanished between listing and reading)

Files whose suffix is not in corpus.suffixes (images, site configuration, OWNERS...) are not documents: by
default they are listed apart (`Listing.others`) so a run can count them, never read, never a failure.

Encodings: the policy is strict. A guessed decoding is a silent corruption risk (mojibake indexed as text), so
detection is opt-in and every file decoded from a guess carries a "transcoded" note that the run reports.

An empty file is NOT rejected here: the validation suite owns "non-empty text"; this module rejects only what
cannot be read.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from lorag.corpus.html_text import html_to_text
from lorag.corpus.markup import normalise_markdown
from lorag.corpus.model import DocKind, Document, Note, Rejected

KIND_BY_SUFFIX: dict[str, DocKind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
}

# charset-normalizer's "chaos" (0 = clean, above 1 = noise); 0.2 is its own cut-off. Correct decodings of real
# prose measured 0.0-0.2, wrong single-byte code pages > 1.0.
_MAX_CHAOS = 0.2
# Share of C0 control characters (other than tab, newline, CR, form feed) above which decoded text is binary.
_MAX_CONTROL_SHARE = 0.01
_TEXT_CONTROLS = {"\t", "\n", "\r", "\f", "\v"}
# What the default policy reads without a guess; any other encoding name on a Document came from detection.
_POLICY_ENCODINGS = {"utf-8", "utf-8-sig", "utf-16-le", "utf-16-be"}
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class EncodingDetectionUnavailable(RuntimeError):
    """corpus.detect_encoding is on but charset-normalizer is not installed."""


@dataclass(frozen=True)
class Listing:
    """What a documents folder holds, sorted POSIX paths relative to its root."""

    files: list[str]  # documents to read (suffix in corpus.suffixes)
    rejected: list[Rejected]  # refused on sight: escaping, broken or looping symlinks, unlistable folders
    others: list[str]  # not documents: suffix not in corpus.suffixes (images, configuration, ...)


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _kind(name: str) -> DocKind | None:
    return KIND_BY_SUFFIX.get(PurePosixPath(name).suffix.lower())


def list_files(
    docs_root: Path, suffixes: tuple[str, ...], other_files: Literal["skip", "quarantine"] = "skip"
) -> tuple[list[str], list[Rejected]]:
    """Candidate documents under `docs_root`, plus the files refused on sight (see `scan`).

    Files that are not documents are left out, or, with `other_files="quarantine"`, refused as unsupported_type.
    """
    listing = scan(docs_root, suffixes)
    refused = list(listing.rejected)
    if other_files == "quarantine":
        detail = f"suffix not in corpus.suffixes {sorted(suffixes)}"
        refused += [Rejected(p, "unsupported_type", detail) for p in listing.others]
    return listing.files, sorted(refused, key=lambda r: r.doc_id)


def scan(docs_root: Path, suffixes: tuple[str, ...]) -> Listing:
    """Walk `docs_root`: documents, files refused on sight, and files that are not documents.

    Hidden files and folders (names starting with '.', e.g. `.dvc`, `.git`) are skipped silently: they are
    metadata, not documents. Symlinks are followed only while their resolved target stays inside the root;
    a symlinked directory is never entered twice along one path, so link cycles end.
    """
    root = Path(docs_root).resolve(strict=True)
    if not root.is_dir():
        raise NotADirectoryError(f"docs root {docs_root} is not a directory: set corpus.docs_dir in params.yaml")
    wanted = {s.lower() for s in suffixes}
    files: list[str] = []
    others: list[str] = []
    rejected: list[Rejected] = []
    # Each entry: (real directory, its relative path as seen from the root, real paths of its ancestors).
    stack: list[tuple[Path, str, frozenset[Path]]] = [(root, "", frozenset({root}))]
    while stack:
        real_dir, rel_dir, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as err:
            rejected.append(Rejected(rel_dir or ".", "unreadable", f"cannot list directory: {err}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            target, problem = _follow(Path(entry.path), root, entry.is_symlink(), ancestors, rel)
            if problem is not None:
                rejected.append(problem)
            elif target is not None and target.is_dir():
                stack.append((target, rel, ancestors | {target}))
            elif PurePosixPath(rel).suffix.lower() not in wanted:
                others.append(rel)
            else:
                files.append(rel)
    return Listing(sorted(files), sorted(rejected, key=lambda r: r.doc_id), sorted(others))


def _follow(
    path: Path, root: Path, is_link: bool, ancestors: frozenset[Path], rel: str
) -> tuple[Path | None, Rejected | None]:
    """Resolve one directory entry; a Rejected when it must not be followed."""
    if not is_link:
        return path, None
    target = path.resolve(strict=False)
    if not _is_within(target, root):
        return None, Rejected(rel, "symlink_escapes_root", f"symlink points outside the docs root, to {target}")
    if not target.exists():
        return None, Rejected(rel, "broken_symlink", f"symlink target {target} does not exist")
    if target.is_dir() and target in ancestors:
        return None, Rejected(rel, "symlink_loop", f"symlinked directory leads back to its ancestor {target}")
    return target, None


def read_documents(
    docs_root: Path, doc_ids: list[str], max_bytes: int, *, detect_encoding: bool = False
) -> tuple[list[Document], list[Rejected]]:
    """Read each listed document; every id comes back either as a Document or as a Rejected."""
    if detect_encoding:
        require_detector()  # fail before reading anything, not at the first Latin-1 file
    docs: list[Document] = []
    rejected: list[Rejected] = []
    for doc_id in doc_ids:
        result = read_document(docs_root, doc_id, max_bytes, detect_encoding=detect_encoding)
        (docs if isinstance(result, Document) else rejected).append(result)  # type: ignore[arg-type]
    return docs, rejected


def require_detector() -> None:
    """Raise EncodingDetectionUnavailable, saying how to fix it, when charset-normalizer cannot be imported."""
    try:
        import charset_normalizer  # noqa: F401
    except ImportError as err:
        raise EncodingDetectionUnavailable(
            "corpus.detect_encoding is true but charset-normalizer is not installed in this environment: "
            "`pip install charset-normalizer`, or set corpus.detect_encoding: false (non-UTF-8 files are then "
            "quarantined as invalid_encoding)"
        ) from err


def read_document(
    docs_root: Path, doc_id: str, max_bytes: int, *, detect_encoding: bool = False
) -> Document | Rejected:
    """Read one file below `docs_root` as text, or say why it cannot be read.

    The symlink check is repeated here (not trusted from `list_files`) and the opened file is compared with
    the checked one, so a path swapped for an escaping symlink in between is caught.
    """
    kind = _kind(doc_id)
    if kind is None:
        return Rejected(doc_id, "unsupported_type", f"suffix not one of {sorted(KIND_BY_SUFFIX)}")
    raw_or_rejected = _read_bytes(Path(docs_root).resolve(strict=True), doc_id, max_bytes)
    if isinstance(raw_or_rejected, Rejected):
        return raw_or_rejected
    raw = raw_or_rejected
    decoded = _decode(doc_id, raw, detect_encoding)
    if isinstance(decoded, Rejected):
        return decoded
    text, encoding = decoded
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    notes: tuple[Note, ...] = ()
    if encoding not in _POLICY_ENCODINGS:
        notes = (Note("transcoded", f"not UTF-8: decoded as {encoding} (corpus.detect_encoding); re-save as UTF-8"),)
    title, metadata = None, {}
    if kind == "html":
        text = html_to_text(text)
    elif kind == "markdown":
        text, title, metadata, found = normalise_markdown(text)
        notes += found
    md5 = hashlib.md5(raw).hexdigest()
    return Document(doc_id, text, kind, md5, len(raw), encoding, title=title, metadata=metadata, notes=notes)


def _read_bytes(root: Path, doc_id: str, max_bytes: int) -> bytes | Rejected:
    path = root / doc_id
    try:
        real = path.resolve(strict=True)
        if not _is_within(real, root):
            return Rejected(doc_id, "symlink_escapes_root", f"resolves outside the docs root, to {real}")
        checked = os.stat(real)
        # O_NONBLOCK: opening a FIFO must not hang the run; O_NOFOLLOW: the last component may not have become
        # a symlink since it was resolved.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as err:
        if path.is_symlink():
            return Rejected(doc_id, "broken_symlink", f"symlink target does not exist: {err}")
        return Rejected(doc_id, "unreadable", f"file vanished before it could be read: {err}")
    except OSError as err:
        return Rejected(doc_id, "unreadable", f"cannot open: {err}")
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            return Rejected(doc_id, "symlink_escapes_root", "path was replaced while being read; not trusted")
        if not stat.S_ISREG(opened.st_mode):
            return Rejected(doc_id, "unsupported_type", "not a regular file")
        if opened.st_size > max_bytes:
            return Rejected(doc_id, "too_large", f"{opened.st_size} bytes > max {max_bytes}", opened.st_size)
        raw = handle.read(max_bytes + 1)  # +1: a file that grew after fstat is still caught
    if len(raw) > max_bytes:
        return Rejected(doc_id, "too_large", f"grew past max {max_bytes} bytes while being read", len(raw))
    return raw


def _decode(doc_id: str, raw: bytes, detect: bool) -> tuple[str, str] | Rejected:
    """(text, encoding name): UTF-16 with a BOM, UTF-8 (BOM or not), else (`detect` only) a confident guess."""
    for bom, name in _UTF16_BOMS:
        if raw.startswith(bom):
            try:
                return _checked_text(doc_id, raw[len(bom) :].decode(name), name, len(raw))
            except UnicodeDecodeError as err:
                return Rejected(doc_id, "invalid_encoding", f"has a {name} byte-order mark but: {err}", len(raw))
    if b"\x00" in raw:
        return Rejected(doc_id, "binary", "contains NUL bytes", len(raw))
    try:
        encoding = "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8"
        return _checked_text(doc_id, raw.decode("utf-8-sig"), encoding, len(raw))
    except UnicodeDecodeError as err:
        utf8_error = f"not UTF-8 ({err.reason} at byte {err.start})"
    if not detect:
        return Rejected(
            doc_id,
            "invalid_encoding",
            f"{utf8_error}: re-save the file as UTF-8, or set corpus.detect_encoding: true to have lorag guess "
            "the encoding (each guess is reported)",
            len(raw),
        )
    guess = _detect(raw)
    if guess is None:
        return Rejected(
            doc_id,
            "invalid_encoding",
            f"{utf8_error} and no encoding detected with confidence; re-save the file as UTF-8",
            len(raw),
        )
    return _checked_text(doc_id, guess[0], guess[1], len(raw))


def _detect(raw: bytes) -> tuple[str, str] | None:
    """A confident (low-chaos) decoding of non-UTF-8 bytes, windows-1252 first.

    Measured with charset-normalizer 3.5: on Western European prose saved as Latin-1/cp1252 its overall best
    guess was often another single-byte code page (cp1257, mac_latin2, cp1250) that mangles the accents, while
    cp1252 itself scored <= 0.1 chaos; text really in cp1250/1251/1253 scored > 1.0 when read as cp1252. So
    cp1252 is tried on its own first, then the detector's best guess.
    """
    require_detector()
    from charset_normalizer import from_bytes

    for guess in (from_bytes(raw, cp_isolation=["cp1252"]).best(), from_bytes(raw).best()):
        if guess is not None and guess.chaos <= _MAX_CHAOS:
            return str(guess), guess.encoding
    return None


def _checked_text(doc_id: str, text: str, encoding: str, size: int) -> tuple[str, str] | Rejected:
    if text:
        controls = sum(1 for ch in text if ch < " " and ch not in _TEXT_CONTROLS)
        if controls / len(text) > _MAX_CONTROL_SHARE:
            return Rejected(doc_id, "binary", f"{controls} control characters in {len(text)}", size)
    return text, encoding
