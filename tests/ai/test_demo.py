"""The demo models: ``train_demo_models`` trains, registers and publishes both, idempotently, and
``seed_demo_ai`` lets the demo company run them (grant holder; approved request)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from portal.ai.demo import seed_demo_ai
from portal.ai.models import DEMO_NOTICE, AIModel, ModelAccessRequest
from portal.ai.selectors import may_run
from portal.audit.models import AuditEvent
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory
from tests.factories.ai import demo_trained
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def demo_world(db):  # type: ignore[no-untyped-def]
    jges, jsp = SocietyFactory(slug="jges"), SocietyFactory(slug="jsp")
    jges_admin = UserFactory(email="jges-admin@demo.example.jp")
    jsp_admin = UserFactory(email="society-admin@demo.example.jp")
    SocietyMembershipFactory(society=jges, user=jges_admin, role="admin")
    SocietyMembershipFactory(society=jsp, user=jsp_admin, role="admin")
    release = make_release(DatasetFactory(society=jges, slug="jges-upper-gi-endoscopy"), [FileSpec("s1")],
                           store=False)
    company = UserFactory(email="company@demo.example.jp")
    active_grant([company], [release])
    UserFactory(email="researcher@demo.example.jp")
    return {"jges": jges, "jsp": jsp, "release": release, "company": company, "jsp_admin": jsp_admin}


@pytest.fixture
def cached_training(monkeypatch):  # type: ignore[no-untyped-def]
    """Training is deterministic for a seed (tested with the engine): reuse the process's models."""
    from portal.ai import demo_models

    trained = {kind: demo_trained(kind) for kind in demo_models.DEMO_SPECS}
    monkeypatch.setattr(demo_models, "train_demo_model", lambda spec, seed=0: trained[spec.kind])


def _command() -> str:
    out = io.StringIO()
    call_command("train_demo_models", stdout=out)
    return out.getvalue()


def test_command_trains_registers_and_publishes_both(demo_world):
    output = _command()
    models = {m.slug: m for m in AIModel.objects.all()}
    assert set(models) == {"demo-endoscopy-organ", "demo-pathology-tile"}
    for model in models.values():
        assert model.is_demo
        [version] = model.versions.all()
        assert (version.version, version.status) == ("1.0.0", "published")
        assert version.metric_accuracy is not None and 0.5 < version.metric_accuracy <= 1.0
        assert version.evaluation_set_size > 0
        assert "synthetic" in version.training_data_en.lower()
        assert f"{model.slug} 1.0.0 (registered and published)" in output
    endoscopy = models["demo-endoscopy-organ"]
    assert endoscopy.society == demo_world["jges"] and models["demo-pathology-tile"].society == demo_world["jsp"]
    assert list(endoscopy.versions.get().training_releases.all()) == [demo_world["release"]]
    assert list(endoscopy.versions.get().evaluation_releases.all()) == [demo_world["release"]]
    assert not models["demo-pathology-tile"].versions.get().training_releases.exists()  # jsp has no release
    assert str(DEMO_NOTICE) in output


def test_command_again_changes_nothing(demo_world, cached_training):
    _command()
    events = AuditEvent.objects.count()
    output = _command()
    assert AIModel.objects.count() == 2
    assert sum(m.versions.count() for m in AIModel.objects.all()) == 2
    assert AuditEvent.objects.count() == events
    assert output.count("already registered, skipped") == 2


def test_command_without_the_societies_registers_nothing(db, cached_training):
    output = _command()
    assert AIModel.objects.count() == 0
    assert "Not registered: no society jges, jsp" in output


def test_seed_demo_ai_opens_the_models_to_the_demo_company(demo_world, cached_training):
    seed_demo_ai()
    seed_demo_ai()  # idempotent
    endoscopy = AIModel.objects.get(slug="demo-endoscopy-organ")
    pathology = AIModel.objects.get(slug="demo-pathology-tile")
    assert endoscopy.open_to_grant_holders
    company = type(demo_world["company"]).objects.get(pk=demo_world["company"].pk)
    assert may_run(company, endoscopy)  # through the JGES grant
    requests = {r.user.email: r for r in ModelAccessRequest.objects.select_related("user", "decided_by")}
    assert set(requests) == {"company@demo.example.jp", "researcher@demo.example.jp"}
    assert requests["company@demo.example.jp"].status == "approved"
    assert requests["company@demo.example.jp"].decided_by == demo_world["jsp_admin"]
    assert requests["researcher@demo.example.jp"].status == "submitted"
    company = type(company).objects.get(pk=company.pk)
    assert may_run(company, pathology)  # through the approved request
    assert AuditEvent.objects.filter(action="ai.model_updated").count() == 1
