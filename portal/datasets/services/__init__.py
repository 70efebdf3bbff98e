"""Every change to datasets and releases: checked, saved and audited in one transaction.

Who may act: an admin of the dataset's society, or the platform operator (``may_manage_society``).
A refusal raises ``PermissionDenied`` (not you) or ``ValidationError`` (not now, or bad input,
with every reason) and changes nothing.

Releases are built by ``release_build`` alone, whatever they come from (a folder import, an upload,
an anonymisation job): it checks every file of the manifest against the storage, leaves out the
files of subjects who opted out, and writes the release and its files at once. A release is never
edited afterwards; ``release_withdraw`` only records its withdrawal.

- ``common``: who may act, and ``ReleaseRejected``
- ``datasets``: create, edit, publish checks, publish, withdraw
- ``releases``: ``release_build`` and ``release_withdraw``
- ``importing``: a release from a folder on the server or from an upload
"""

from portal.datasets.services.common import ReleaseRejected
from portal.datasets.services.datasets import (
    DATASET_FIELDS,
    FIXED_ONCE_PUBLISHED,
    RESERVED_SLUGS,
    PublishCheck,
    dataset_create,
    dataset_publish,
    dataset_publish_checks,
    dataset_update,
    dataset_withdraw,
)
from portal.datasets.services.importing import (
    PROGRESS_EVERY,
    UPLOAD_MAX_BYTES,
    UPLOAD_MAX_FILES,
    ImportProgress,
    release_import_folder,
    release_upload,
    upload_max_files,
)
from portal.datasets.services.releases import (
    release_build,
    release_withdraw,
)

__all__ = [
    "DATASET_FIELDS",
    "FIXED_ONCE_PUBLISHED",
    "PROGRESS_EVERY",
    "RESERVED_SLUGS",
    "UPLOAD_MAX_BYTES",
    "UPLOAD_MAX_FILES",
    "ImportProgress",
    "PublishCheck",
    "ReleaseRejected",
    "dataset_create",
    "dataset_publish",
    "dataset_publish_checks",
    "dataset_update",
    "dataset_withdraw",
    "release_build",
    "release_import_folder",
    "release_upload",
    "release_withdraw",
    "upload_max_files",
]
