"""An explicit registry through which a lower app causes something in a higher one.

The apps stand in layers (see ``[tool.importlinter]`` in pyproject.toml): a lower app never imports
a higher one. Where a change in a lower app must have an effect in a higher one (a release withdrawn
→ notices on the AI models built on it), the lower app runs a named hook inside its own transaction,
and the higher app registers its function under that name in its ``AppConfig.ready()``::

    # portal/datasets/services.py (lower)
    hooks.run("release_withdrawn", release=locked, by=by)

    # portal/ai/apps.py (higher)
    def ready(self) -> None:
        hooks.register("release_withdrawn", provenance_hooks.release_withdrawn)

As wagtail's hooks: plain function calls in registration order (INSTALLED_APPS order), not signals,
so an exception in a hook rolls back the caller's transaction. Every hook name is listed in
``HOOKS`` with what it passes, so a misspelt name fails loudly instead of running nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# name → the keyword arguments the caller passes (and what the caller does with the results).
HOOKS: dict[str, str] = {
    # portal.datasets.services.release_build, inside its transaction. Results are ignored.
    "release_built": "release",
    # portal.datasets.services.release_withdraw, inside its transaction. Results are ignored.
    "release_withdrawn": "release, by",
    # portal.optout.services.optout_request_record, inside its transaction, before the audit
    # event: the subject leaves indexes. Each result is a number of rows removed; they are summed.
    "optout_subject_forget": "pseudonym, datasets",
    # portal.optout.services.optout_request_record, inside its transaction, after the audit event.
    # Results are ignored.
    "optout_request_recorded": "releases, reference, counts, by",
    # portal.optout.services.optout_request_record, inside its transaction: the grants in force
    # that hold any of ``release_ids`` (their named users are asked to delete the subject's files).
    # The results (iterables of grants) are joined.
    "release_holders": "release_ids",
    # portal.datasets.services: the pseudonyms of subjects who refused use of ``dataset`` (left out
    # of its releases). The results (sets of pseudonyms) are joined.
    "dataset_excluded_pseudonyms": "dataset",
    # portal.datasets.services.dataset_publish_checks (and what rests on it): does a published notice
    # cover ``dataset``? Yes when any result is true (portal.optout).
    "dataset_has_published_notice": "dataset",
    # The pages of portal.datasets: the report of the job ``release`` was built from, or None; the
    # first result that is not None is shown (portal.deid: the anonymisation job's report).
    "release_build_report": "release",
    # portal.ethics.views (a protocol's page): the releases resting on ``protocol``, each with the
    # report of the job it was built from; the results (lists of pairs) are joined (portal.deid).
    "protocol_released_data": "protocol",
    # The catalogue page and API of portal.datasets: the published opt-out notices covering
    # ``dataset``, each as (notice, address of its public page); the results are joined
    # (portal.optout).
    "dataset_public_notices": "dataset",
    # portal.datasets.api.ReleaseManifest: may ``user`` see the subject pseudonyms of ``release``'s
    # files? Yes when any result is true (portal.access: an active grant on the release).
    "release_subjects_visible": "user, release",
}

_registry: dict[str, list[Callable[..., Any]]] = {}


def _known(name: str) -> str:
    if name not in HOOKS:
        raise LookupError(f"Unknown hook {name!r}: list it in portal.lib.hooks.HOOKS.")
    return name


def register(name: str, fn: Callable[..., Any]) -> None:
    """Run ``fn`` whenever hook ``name`` runs. Registering the same function twice is a no-op
    (``ready()`` may run more than once in tests)."""
    functions = _registry.setdefault(_known(name), [])
    if fn not in functions:
        functions.append(fn)


def get_hooks(name: str) -> list[Callable[..., Any]]:
    return list(_registry.get(_known(name), ()))


def first(name: str, **kwargs: Any) -> Any:
    """The first result of hook ``name`` that is not None (the functions after it are not called)."""
    for fn in get_hooks(name):
        result = fn(**kwargs)
        if result is not None:
            return result
    return None


def joined(name: str, **kwargs: Any) -> list[Any]:
    """The results of hook ``name`` (each an iterable), joined into one list."""
    return [item for result in run(name, **kwargs) for item in result]


def run(name: str, **kwargs: Any) -> list[Any]:
    """Call every function registered for ``name`` with ``kwargs``; return their results in order."""
    return [fn(**kwargs) for fn in get_hooks(name)]
