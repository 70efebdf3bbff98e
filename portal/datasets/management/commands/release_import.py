"""Import a folder of already-anonymised files as a new release of a dataset.

    python manage.py release_import DATASET_SLUG FOLDER --by EMAIL [--manifest F]
        [--notes-ja TEXT] [--notes-en TEXT]

Every problem is printed as ``path: message``; the exit code is 1 when the import failed (nothing
is then published and nothing is left in the storage).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.models import User
from portal.datasets.models import Dataset
from portal.datasets.services import ImportProgress, ReleaseRejected, release_import_folder


class Command(BaseCommand):
    help = "Import a folder of anonymised files, listed in a manifest, as a new release of a dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="The dataset's slug.")
        parser.add_argument("folder", help="The folder holding the files and the manifest.")
        parser.add_argument("--manifest", help="The manifest (default: manifest.csv or manifest.tsv in the folder).")
        parser.add_argument("--notes-ja", default="", help="Release notes in Japanese.")
        parser.add_argument("--notes-en", default="", help="Release notes in English.")
        parser.add_argument("--by", required=True, help="E-mail address of the society admin importing.")

    def _progress(self, state: ImportProgress) -> None:
        self.stdout.write(
            f"{state.files}/{state.total_files} files, {state.bytes} bytes, {state.seconds:.1f} s"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.select_related("society", "protocol").filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"No dataset with the slug {options['dataset']!r}.")
        by = User.objects.filter(email__iexact=options["by"], is_active=True).first()
        if by is None:
            raise CommandError(f"No active user with the e-mail address {options['by']!r}.")
        try:
            release = release_import_folder(
                dataset=dataset, folder=options["folder"], by=by, manifest=options["manifest"],
                notes_ja=options["notes_ja"], notes_en=options["notes_en"], progress=self._progress,
            )
        except ReleaseRejected as rejected:
            for problem in rejected.problems:
                self.stderr.write(str(problem))
            raise CommandError(
                f"Import refused: {len(rejected.problems)} problem(s); nothing was published."
            ) from None
        except PermissionDenied as error:
            raise CommandError(f"Refused: {error}") from None
        except ValidationError as error:
            for message in error.messages:
                self.stderr.write(message)
            raise CommandError("Import refused; nothing was published.") from None
        self.stdout.write(self.style.SUCCESS(
            f"Release v{release.version} of {dataset.slug}: {release.file_count} files, "
            f"{release.total_bytes} bytes, {release.case_count} cases, "
            f"{release.excluded_subject_count} subjects excluded by opt-out."
        ))
