"""Model files on disk: XGBoost's own UBJ format plus a JSON metadata sidecar; never pickle.

A model is a folder (``models/minerscope-default/``)::

    binary.ubj      mining-vs-benign booster (XGBoost universal binary JSON)
    coin.ubj        coin booster (absent when the training data had < 2 coins)
    metadata.json   the sidecar: feature schema hash/version, the selected features of
                    each booster, coin classes, operating threshold, training recipe and
                    seed, metrics, library versions, and the sha256 of each booster file

Why this shape: XGBoost's JSON/UBJ formats load across library versions and cannot run
code when read (a pickle can); the sidecar is what ties a booster to the exact feature
columns it was trained on. Loading refuses a model whose schema hash differs from this
build's :data:`~minerscope.features.schema.SCHEMA_HASH` (a clear :class:`ModelError`,
not silently shifted columns), and a booster whose bytes differ from the sha256 recorded
in the sidecar (a half-copied or edited model). A save writes the complete new folder
next to the old one (``.<name>.saving-*``) and swaps the two in one ``renameat2``
``RENAME_EXCHANGE`` (Linux; elsewhere two renames), so a crash at any point leaves the
old model or the new one, whole (found by killing a saving process in a loop:
``tests/hostile/test_durability.py``). A folder holds one model and one process at a
time saves a given folder. Because the swap replaces the folder whole, a save goes only
where it loses nothing (:func:`check_model_folder`): a new or empty folder, or one that
holds a minerscope model and nothing else; never the current directory or one above it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minerscope.atomicfile import atomic_write_bytes
from minerscope.errors import InputError, ModelError
from minerscope.model import treecache
from minerscope.model.trees import TreeArrays, read_trees

if TYPE_CHECKING:
    import xgboost

FORMAT = "minerscope-model"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
BINARY_FILE = "binary.ubj"
COIN_FILE = "coin.ubj"
MODEL_FILES = frozenset({METADATA_FILE, BINARY_FILE, COIN_FILE})
"""Every file a save writes: a folder holding only these (and a sidecar of ours) may be replaced."""


@dataclass(slots=True, eq=False)
class BoosterFile:
    """One booster of a model: its UBJ bytes, its trees as arrays, and an
    ``xgboost.Booster`` built from the bytes only when something asks for one.

    Why lazily: scoring walks the arrays itself (:mod:`minerscope.model.predict`, exact),
    so a scan process need not load xgboost's library at all (~10 MB resident). Training,
    evaluation and boosters the kernels do not cover (``trees`` None) use the booster.
    """

    blob: bytes
    trees: TreeArrays | None
    source: str = "booster"
    """Where the bytes came from, for error messages."""
    _booster: xgboost.Booster | None = None

    @classmethod
    def of(cls, booster: xgboost.Booster) -> BoosterFile:
        """An in-memory booster (just trained)."""
        blob = booster_bytes(booster)
        return cls(blob, read_trees(blob), "trained booster", booster)

    @property
    def booster(self) -> xgboost.Booster:
        """The booster, loaded by XGBoost on first use (nthread 1).

        Raises:
            ModelError: XGBoost cannot read the bytes.
        """
        if self._booster is None:
            import xgboost

            booster = xgboost.Booster()
            try:
                booster.load_model(bytearray(self.blob))
            except xgboost.core.XGBoostError as exc:
                raise ModelError(
                    f"{self.source}: XGBoost cannot load this booster: {str(exc).splitlines()[0]}"
                ) from None
            booster.set_param({"nthread": 1})
            self._booster = booster
        return self._booster


@dataclass(slots=True)
class Model:
    """A loaded model: both boosters and what the sidecar says about them.

    Attributes:
        name: folder name.
        path: the model folder.
        metadata: the parsed sidecar.
        binary_file: mining-vs-benign booster (output: probability of mining); ``binary``
            is its ``xgboost.Booster``.
        binary_features: its input columns, in order.
        threshold: operating threshold on ``p_mining``.
        window_s: window length the model was trained on.
        min_messages: windows with fewer application messages were left out of training
            (they say nothing: reconnects, lone handshakes), so they are not scored either;
            0 (a model whose sidecar does not say) scores every window.
        coin_file: coin booster (``multi:softprob``), or None; ``coin`` is its
            ``xgboost.Booster``.
        coin_features: its input columns.
        coin_classes: class names, in the booster's output order.
        warnings: what loading found worth saying but not refusing (a sidecar written
            by a newer minerscope), one line each, for the front end to print.
    """

    name: str
    path: Path
    metadata: dict[str, Any]
    binary_file: BoosterFile
    binary_features: tuple[str, ...]
    threshold: float
    window_s: float
    min_messages: int = 0
    coin_file: BoosterFile | None = None
    coin_features: tuple[str, ...] = ()
    coin_classes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()

    @property
    def binary(self) -> xgboost.Booster:
        """The mining-vs-benign ``xgboost.Booster`` (imports xgboost on first use)."""
        return self.binary_file.booster

    @property
    def coin(self) -> xgboost.Booster | None:
        """The coin ``xgboost.Booster``, or None (imports xgboost on first use)."""
        return None if self.coin_file is None else self.coin_file.booster


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def booster_bytes(booster: xgboost.Booster) -> bytes:
    """The booster serialised in XGBoost's UBJ format."""
    return bytes(booster.save_raw(raw_format="ubj"))


def check_model_folder(folder: str | Path) -> None:
    """Refuse a model folder a save would destroy something in, before any work is done.

    A save swaps the whole folder (see the module docstring), so it may replace only a
    folder that does not exist, is empty, or holds a minerscope model (a ``metadata.json``
    of :data:`FORMAT`) and no file a save would not write again; replacing a model
    stays atomic and needs no flag, as before. The current directory and every folder
    above it are refused whatever they hold (renaming ``.`` fails with EBUSY; renaming a
    parent would pull the working directory away).

    Raises:
        InputError: the folder is not one a model may be written to (message names it).
    """
    out = Path(folder)
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        where = "the current directory" if resolved == cwd else "a folder above the current directory"
        raise InputError(
            f"{out}: is {where}; a model is written as a whole folder: give a new one (models/NAME)"
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; a model is written as a folder")
    try:
        names = sorted(p.name for p in out.iterdir())
    except OSError as exc:
        raise InputError(f"{out}: cannot list this folder: {exc.strerror or exc}") from None
    if not names:
        return
    if not _holds_model(out / METADATA_FILE):
        raise InputError(
            f"{out}: folder is not empty and holds no minerscope model ({len(names)} entries, "
            f"e.g. {names[0]!r}); a save would replace it whole: give a new or empty folder"
        )
    extra = [n for n in names if n not in MODEL_FILES]
    if extra:
        raise InputError(
            f"{out}: holds a model and also {', '.join(repr(n) for n in extra[:3])}"
            f"{' ...' if len(extra) > 3 else ''}, which replacing the model would delete: move them away"
        )


def _holds_model(meta_path: Path) -> bool:
    """Whether ``meta_path`` is a sidecar of ours (its ``format`` field; nothing else is read)."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def save_model(
    folder: str | Path,
    binary: xgboost.Booster,
    metadata: dict[str, Any],
    coin: xgboost.Booster | None = None,
) -> Path:
    """Write a model folder atomically (complete new folder, then one swap).

    ``metadata`` must hold ``binary.features``, ``binary.threshold``, ``window_s``,
    ``schema_hash``/``schema_version``, and, when ``coin`` is given,
    ``coin.features``/``coin.classes``; file names and checksums are added here.

    Returns:
        The folder.

    Raises:
        InputError: ``folder`` holds something other than a model (:func:`check_model_folder`).
    """
    out = Path(folder)
    check_model_folder(out)
    meta = json.loads(json.dumps(metadata))  # deep copy, and proves it is plain JSON
    meta["format"] = FORMAT
    meta["format_version"] = FORMAT_VERSION
    meta["name"] = out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.saving-*"):  # left by a save that crashed
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.saving-", dir=out.parent))
    try:
        blob = booster_bytes(binary)
        atomic_write_bytes(staging / BINARY_FILE, blob)
        meta.setdefault("binary", {})
        meta["binary"]["file"] = BINARY_FILE
        meta["binary"]["sha256"] = _sha256(blob)
        if coin is not None:
            cblob = booster_bytes(coin)
            atomic_write_bytes(staging / COIN_FILE, cblob)
            meta.setdefault("coin", {})
            meta["coin"]["file"] = COIN_FILE
            meta["coin"]["sha256"] = _sha256(cblob)
        else:
            meta["coin"] = None
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(staging / METADATA_FILE, text.encode())
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide a shipped model from others
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a swap: the old model
    return out


def _swap_in(new: Path, out: Path) -> None:
    """Put the folder ``new`` at ``out`` in one step; ``new`` then holds the old folder."""
    if not out.exists():
        os.rename(new, out)
        new.mkdir()  # the caller removes it, as it would the old model
    elif not _exchange(new, out):  # no atomic exchange here: two renames, a short window
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.saving-", dir=out.parent))
        os.rename(out, old / out.name)
        os.rename(new, out)
        os.rename(old, new)
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # glibc < 2.28, musl
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # kernel or filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def resolve_model_path(path_or_name: str | Path | None) -> Path:
    """The model folder for a path, a sidecar path, a shipped model name, or None (the default)."""
    from minerscope import resources

    if path_or_name is None:
        return resources.models_dir() / resources.DEFAULT_MODEL_NAME
    candidate = Path(path_or_name)
    if candidate.is_file() and candidate.name == METADATA_FILE:
        return candidate.parent
    if candidate.is_dir():
        return candidate
    if len(candidate.parts) == 1:
        shipped = resources.models_dir() / candidate.name
        if shipped.is_dir():
            return shipped
    raise ModelError(f"model not found: {path_or_name} (neither a model folder nor a shipped model name)")


def load_model(path_or_name: str | Path | None = None) -> Model:
    """Load a model folder, verifying format, schema hash and file checksums.

    Args:
        path_or_name: a model folder, its ``metadata.json``, the name of a shipped
            model (``minerscope-default``), or None for the shipped default
            (resolved through :func:`minerscope.resources.models_dir`).

    Raises:
        ModelError: missing files, malformed sidecar, another feature schema, a
            checksum mismatch, or a booster XGBoost cannot read.
    """
    from minerscope.features.schema import FEATURE_NAMES, SCHEMA_HASH, SCHEMA_VERSION

    folder = resolve_model_path(path_or_name)
    meta_path = folder / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{meta_path}: model metadata sidecar missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path}: not a minerscope model sidecar (format field missing or wrong)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{meta_path}: model format version {meta.get('format_version')!r} is not supported "
            f"(this build reads {FORMAT_VERSION})"
        )
    if meta.get("schema_hash") != SCHEMA_HASH:
        raise ModelError(
            f"{meta_path}: model was trained on feature schema v{meta.get('schema_version')} "
            f"({str(meta.get('schema_hash'))[:12]}...), this build extracts schema v{SCHEMA_VERSION} "
            f"({SCHEMA_HASH[:12]}...); retrain it with `minerscope train`"
        )
    known = set(FEATURE_NAMES)
    try:
        bmeta = meta["binary"]
        binary_features = tuple(str(n) for n in bmeta["features"])
        threshold = _number_in(bmeta["threshold"], "binary.threshold", meta_path, 0.0, 1.0)
        window_s = _number_in(meta["window_s"], "window_s", meta_path, 0.0, math.inf, low_open=True)
        min_messages = _min_messages(meta.get("min_messages", 0), meta_path)
        binary = _load_booster(folder, bmeta, meta_path, binary_features, groups=1)
        coin = None
        coin_features: tuple[str, ...] = ()
        coin_classes: tuple[str, ...] = ()
        cmeta = meta.get("coin")
        if cmeta:
            coin_features = tuple(str(n) for n in cmeta["features"])
            coin_classes = tuple(str(c) for c in cmeta["classes"])
            coin = _load_booster(folder, cmeta, meta_path, coin_features, groups=len(coin_classes))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed model metadata ({type(exc).__name__}: {exc})") from None
    unknown = [n for n in (*binary_features, *coin_features) if n not in known]
    if unknown:
        raise ModelError(f"{meta_path}: model uses features this build does not extract: {unknown[:5]}")
    if not binary_features:
        raise ModelError(f"{meta_path}: binary model lists no features")
    return Model(
        name=folder.name,
        path=folder,
        metadata=meta,
        binary_file=binary,
        binary_features=binary_features,
        threshold=threshold,
        window_s=window_s,
        min_messages=min_messages,
        coin_file=coin,
        coin_features=coin_features,
        coin_classes=coin_classes,
        warnings=_newer_writer(meta, meta_path),
    )


def _number_in(
    value: object, name: str, meta_path: Path, low: float, high: float, *, low_open: bool = False
) -> float:
    """A finite number of the sidecar within ``[low, high]`` (``(low, high]`` when ``low_open``).

    A threshold of 2.5 or NaN would load and then flag nothing; a window of 0 s fail
    later without naming the file: both are refused here, naming the file and field.
    """
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or number > high or number < low or (low_open and number == low):
        bounds = f"a number above {low:g}" if math.isinf(high) else f"a number from {low:g} to {high:g}"
        raise ModelError(f"{meta_path}: {name} must be {bounds}, got {value!r}")
    return number


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"0.1.0"`` -> ``(0, 1, 0)``; digits of each dotted part up to the first non-digit."""
    parts = []
    for part in text.split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _newer_writer(meta: dict[str, Any], meta_path: Path) -> tuple[str, ...]:
    """A warning line when the sidecar was written by a newer minerscope than this one.

    Its feature schema and format version are already checked (another schema or format
    is refused), so what remains is a newer build's recipe: a threshold rule or window
    handling this build may not reproduce. Said, not refused. (A newer ``schema_version``
    never reaches here: the schema hash covers the version and a mismatch is refused.)
    """
    from minerscope import __version__

    libs = meta.get("libraries")
    written = libs.get("minerscope") if isinstance(libs, dict) else None
    if not isinstance(written, str) or not _version_tuple(written):
        return ()
    if _version_tuple(written) > _version_tuple(__version__):
        return (
            f"{meta_path}: model written by minerscope {written}, newer than this {__version__}; "
            "its scores may differ from what that version reports",
        )
    return ()


def _min_messages(value: object, meta_path: Path) -> int:
    """The sidecar's ``min_messages``: a whole number of messages, 0 to 1,000,000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ModelError(f"{meta_path}: min_messages must be a whole number from 0 to 1000000, got {value!r}")
    return value


def _load_booster(
    folder: Path, part: dict[str, Any], meta_path: Path, features: tuple[str, ...], groups: int
) -> BoosterFile:
    """A booster file, checked: its sha256, and that its trees are whole, split on the
    listed features only and have the expected number of outputs (the scoring kernels
    trust the arrays). A booster the kernels do not cover is loaded by XGBoost now, so a
    file it cannot read fails here, not at the first capture."""
    file = folder / str(part["file"])
    if Path(str(part["file"])).name != str(part["file"]):
        raise ModelError(f"{meta_path}: booster file name {part['file']!r} must be a plain file name")
    try:
        blob = file.read_bytes()
    except OSError as exc:
        raise ModelError(f"{file}: cannot read booster: {exc.strerror or exc}") from None
    digest = _sha256(blob)
    if digest != part.get("sha256"):
        raise ModelError(f"{file}: checksum differs from the one in {METADATA_FILE} (edited or half-copied?)")
    arrays = treecache.load(digest)
    if arrays is None:
        try:
            arrays = read_trees(blob)
        except (ValueError, KeyError, IndexError, TypeError, struct.error, UnicodeDecodeError) as exc:
            raise ModelError(f"{file}: not an XGBoost UBJ booster ({type(exc).__name__}: {exc})") from None
        if arrays is not None:
            treecache.save(digest, arrays)
    loaded = BoosterFile(blob, arrays, str(file))
    if arrays is None:
        loaded.booster  # noqa: B018  (XGBoost validates what the kernels do not read)
        return loaded
    if arrays.n_features != len(features):  # XGBoost refuses such input at prediction
        raise ModelError(
            f"{file}: booster takes {arrays.n_features} features, {meta_path} lists {len(features)}"
        )
    if arrays.groups != max(1, groups):
        raise ModelError(
            f"{file}: booster has {arrays.groups} output(s), {meta_path} lists {groups} class(es)"
        )
    used = arrays.feature[arrays.left >= 0]
    if used.size and (int(used.max()) >= len(features) or int(used.min()) < 0):
        raise ModelError(
            f"{file}: booster splits on feature #{int(used.max())}, {meta_path} lists {len(features)} features"
        )
    return loaded
