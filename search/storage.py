"""Where a search's study lives, and opening it: a journal file by default, or an RDB URL.

Any storage that cannot be opened is bad input, said in one line (exit 2 on the command line);
so is a study that is already there without `resume`, or one whose settings differ from the
resumed run's (docs/design.md, File formats).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from search.settings import SearchSettings
from search_space.errors import InputError

__all__ = ["STUDY_NAME", "open_storage", "open_study", "study_fingerprint"]

STUDY_NAME = "vit-nas-search"


def open_storage(out: Path, url: str | None) -> optuna.storages.BaseStorage:
    """The study's storage: an RDB URL (opened here, so that a bad one is an `InputError`), else a
    journal file (`OUT/study.journal` by default)."""
    if url and "://" in url:
        return _rdb_storage(url)
    from search.journal import open_journal

    return open_journal(Path(url) if url else out / "study.journal")


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage, connected now: a URL that cannot be opened is bad input, said in one line."""
    import warnings

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SAWarning, SQLAlchemyError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise InputError(f"--storage {url}: not a database URL (e.g. sqlite:///study.db)") from None
    shown = parsed.render_as_string(hide_password=True)
    try:  # Optuna fills the URL in as a str.format template ({SCHEMA_VERSION})
        url.format(SCHEMA_VERSION=0)
    except (IndexError, KeyError, ValueError):
        raise InputError(f"--storage {shown}: braces may only form Optuna's {{SCHEMA_VERSION}} "
                         "template") from None
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise InputError(f"--storage {shown}: an in-memory database keeps nothing to resume; "
                         "name a file, e.g. sqlite:///study.db")
    try:
        with warnings.catch_warnings():  # e.g. query arguments the driver would ignore
            warnings.simplefilter("error", SAWarning)
            return optuna.storages.RDBStorage(url)
    except ImportError:
        raise InputError(f"--storage {shown}: no database driver for this URL is installed") from None
    except (SQLAlchemyError, SAWarning, optuna.exceptions.StorageInternalError, OSError, ValueError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise InputError(f"--storage {shown}: cannot open the database "
                         f"({' '.join(str(reason).split()[:30])})") from None


def study_fingerprint(settings: SearchSettings, supernet_sha256: str, space_fingerprint: str
                      ) -> dict[str, Any]:
    """What a resume must match: the settings, the supernet's hash and the space (the study's
    `settings` user attribute)."""
    return {**settings.to_dict(), "supernet_sha256": supernet_sha256, "space": space_fingerprint}


def open_study(storage: optuna.storages.BaseStorage, sampler: optuna.samplers.BaseSampler | None,
               directions: list[str], resume: bool, fingerprint: dict[str, Any]) -> optuna.Study:
    """The search's study in `storage`: a new one, or with `resume` the one there, whose stored
    fingerprint must equal `fingerprint`."""
    exists = any(s.study_name == STUDY_NAME for s in optuna.get_all_study_summaries(storage))
    if exists and not resume:
        raise InputError("the output already holds a search: pass --resume to continue it, "
                         "or another --out")
    if resume and not exists:
        raise InputError("nothing to resume: the output holds no search yet (drop --resume)")
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                                directions=directions, load_if_exists=True)
    if exists:
        saved = study.user_attrs.get("settings", {})
        diff = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
        if diff:
            raise InputError("--resume needs the settings of the search it resumes; these differ: "
                             + ", ".join(f"{k} (was {saved.get(k)!r})" for k in diff))
    else:
        study.set_user_attr("settings", fingerprint)
    return study
