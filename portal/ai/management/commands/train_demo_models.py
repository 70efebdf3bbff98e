"""Train the two demo models on synthetic images and register them (idempotent; see portal.ai.demo)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Train the demo AI models (endoscopy organ, pathology tile) on synthetic images, export them to "
        "ONNX and register and publish them with their held-out metrics. Demo models, synthetic data, "
        "not for clinical use. A model already registered with the same ONNX file is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data and training")

    def handle(self, *args: Any, **options: Any) -> None:
        from portal.ai.demo import register_demo_models
        from portal.ai.demo_models import DEMO_SPECS

        registered = register_demo_models(seed=options["seed"])
        for result in registered:
            metrics = ", ".join(
                f"{name} {value:.3f}" for name, value in result.metrics.items() if value is not None
            )
            state = "registered and published" if result.created else "already registered, skipped"
            self.stdout.write(
                f"{result.slug} {result.version} ({state}): {metrics}; held-out {result.evaluation_set_size} "
                f"images, trained on {result.training_set_size}; sha256 {result.sha256}"
            )
        missing = sorted({spec.society_slug for spec in DEMO_SPECS.values()} - {
            DEMO_SPECS[kind].society_slug for kind in DEMO_SPECS
            if any(r.slug == DEMO_SPECS[kind].slug for r in registered)})
        if missing:
            self.stdout.write(self.style.WARNING(
                f"Not registered: no society {', '.join(missing)} or no admin/operator to act "
                "(run seed_demo first)."
            ))
        self.stdout.write(self.style.SUCCESS("Demo model, synthetic data, not for clinical use."))
