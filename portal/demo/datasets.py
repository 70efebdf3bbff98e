"""Demo datasets: for each society a published dataset with a small release of synthetic files,
its opt-out notice, a few opt-out requests, a grant, and subjects whose records link across
pathology, endoscopy and radiology. Everything goes through the services, as a person would.

The patients are invented: their "patient IDs" (DEMO-000001, …) exist only here, are turned into
pseudonyms with the portal's key like real ones, and every image says SYNTHETIC in its pixels.
"""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from portal.accounts.models import User
from portal.datasets import services as datasets
from portal.datasets.models import Dataset
from portal.ethics.models import Protocol
from portal.lib.pseudonym import subject_pseudonym
from portal.lib.synthetic import synthetic_file
from portal.linkage.services import linkage_approval_grant
from portal.optout import services as optout
from portal.optout.models import OptOutRequest
from portal.societies.models import Society, SocietyMembership

DEMO_INSTITUTION = "DEMO-H001"
SUBJECTS_PER_DATASET = 12
# Patients 1–8 were seen by pathology, endoscopy and radiology: their records link. The
# radiology date lies a few days after the endoscopy, within the linkage tolerance.
LINKED_SOCIETIES = {"jsp": 0, "jges": 0, "jrs": 3}
# Patient 11 asked the pathology society to stop before its release was built: excluded from it.
EARLY_OPT_OUT = {"society": "jsp", "patient": 11}
_OTHER_SOCIETIES = ("jos", "jsum", "jda")


def demo_patient_id(number: int) -> str:
    return f"DEMO-{number:06d}"


def demo_pseudonym(number: int) -> str:
    return subject_pseudonym(institution_code=DEMO_INSTITUTION, patient_id=demo_patient_id(number))


def _study_date(society: str, number: int) -> date:
    base = date(2020, 6, 1) + timedelta(days=120 * number)
    if society in LINKED_SOCIETIES and number <= 8:
        return base + timedelta(days=LINKED_SOCIETIES[society])
    # Everyone else is seen by one society only, weeks apart from any other record.
    return base + timedelta(days={"jsp": 40, "jges": 80, "jrs": 120}.get(society, 0))


def _write_release_folder(folder: Path, spec: dict[str, Any]) -> None:
    """Two images a subject (one for whole slides), annotations where the dataset has them, and
    a manifest.csv, in the layout `release_import` reads."""
    modality = spec["modality"]
    annotated = spec["annotation_granularity"] != "none"
    images_per_subject = 1 if modality == "pathology_wsi" else 2
    # Other societies' patients are their own (numbers 101–, 201–, …), so they do not link.
    offset = 100 * (sorted(_OTHER_SOCIETIES).index(spec["society"]) + 1) if spec["society"] in _OTHER_SOCIETIES else 0
    rows = []
    for number in range(1, SUBJECTS_PER_DATASET + 1):
        patient = number if spec["society"] in LINKED_SOCIETIES else number + offset
        pseudonym = demo_pseudonym(patient)
        study_date = _study_date(spec["society"], number)
        for index in range(images_per_subject):
            content, extension, _media_type = synthetic_file(
                modality, seed=patient * 10 + index, study_date=study_date, subject=pseudonym
            )
            path = f"case-{number:03d}/{study_date:%Y%m%d}_{index + 1}.{extension}"
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
            annotation_path = ""
            if annotated:
                annotation_path = path.rsplit(".", 1)[0] + ".json"
                label = {"granularity": spec["annotation_granularity"], "synthetic": True,
                         "label": "demo-label", "image": path}
                (folder / annotation_path).write_text(json.dumps(label, ensure_ascii=False), encoding="utf-8")
                rows.append([annotation_path, pseudonym, study_date.isoformat(), modality, ""])
            rows.append([path, pseudonym, study_date.isoformat(), modality, annotation_path])
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject_pseudonym", "study_date", "modality", "annotation_path"])
        writer.writerows(rows)


def _notice_fields(society: Society, dataset_title: str, protocol: Protocol) -> dict[str, Any]:
    return {
        "title_ja": f"{society.name_ja}：臨床画像データベースの研究利用に関するお知らせ",
        "title_en": f"{society.name_en}: notice on the research use of the clinical image database",
        "purpose_and_method_ja": (
            "診療で撮影された画像を、氏名などを削除し学会共通の仮名IDを付した上で学会のデータベースに収集し、"
            "診断支援AIの研究開発に利用します。承認を受けた研究者・共同研究企業には、署名済みの利用契約に基づき"
            "国立情報学研究所のクラウド基盤上で提供します。"
        ),
        "purpose_and_method_en": (
            "Images taken in routine care are collected into the society's database with names removed and a "
            "society-common pseudonymous ID, and used to develop diagnostic AI. Approved researchers and joint-"
            "research companies receive them on the NII cloud under a signed data-use agreement."
        ),
        "data_items_ja": f"{dataset_title}、診断名、検査日（年月日）、学会共通仮名ID",
        "providing_org_and_head_ja": "デモ総合病院（病院長 デモ 太郎）ほか参加施設",
        "acquisition_method_ja": "診療の過程で撮影・作製された既存の画像及び診療情報",
        "pi_and_org_ja": "研究代表者 デモ 研究者（デモ総合病院）",
        "user_scope_ja": f"{society.name_ja}、国立情報学研究所、利用審査で承認された研究機関及び共同研究企業",
        "data_controller_ja": f"{society.name_ja} データベース管理責任者",
        "stop_on_request_ja": (
            "研究対象者又はその代理人の求めに応じて、研究対象者が識別される情報の利用又は他の研究機関への提供を停止します。"
            "お申し出により不利益を受けることはありません。"
        ),
        "how_to_request_ja": "受診された医療機関の窓口、電話又はメールでお申し出ください（所定の様式があります）。",
        "contact_ja": f"{society.name_ja} 事務局（demo@example.jp、03-0000-0000）",
        "start_date": timezone.localdate() - timedelta(days=30),
    }


def seed_demo_datasets(data: dict[str, Any], *, protocol: Protocol) -> None:
    operator = User.objects.get(email="operator@demo.example.jp")
    admins = {
        membership.society.slug: membership.user
        for membership in SocietyMembership.objects.filter(role="admin").select_related("society", "user")
    }
    built = {}
    for spec in data.get("datasets", []):
        existing = Dataset.objects.filter(slug=spec["slug"]).first()
        if existing is not None:
            built[spec["society"]] = existing
            continue
        society = Society.objects.get(slug=spec["society"])
        by = admins.get(society.slug, operator)
        fields = {key: value for key, value in spec.items() if key not in {"society", "collection_start", "collection_end"}}
        dataset = datasets.dataset_create(
            society=society, by=by, protocol=protocol,
            collection_start=date.fromisoformat(spec["collection_start"]),
            collection_end=date.fromisoformat(spec["collection_end"]),
            **fields,
        )
        notice = optout.optout_notice_create(
            society=society, protocol=protocol, datasets=[dataset], by=by,
            **_notice_fields(society, spec["title_ja"], protocol),
        )
        optout.optout_notice_publish(notice=notice, by=by)
        datasets.dataset_publish(dataset=dataset, by=by)
        if society.slug == EARLY_OPT_OUT["society"]:
            _record_request(society, by, EARLY_OPT_OUT["patient"], extent="future_only")
        with tempfile.TemporaryDirectory(prefix="portal-demo-") as folder:
            _write_release_folder(Path(folder), spec)
            datasets.release_import_folder(
                dataset=dataset, folder=Path(folder), by=by,
                notes_ja="初回リリース（デモ用の合成画像）", notes_en="First release (synthetic demo images)",
            )
        built[spec["society"]] = dataset

    admin = admins.get("jsp")
    if admin is not None and not admin.linkage_approvals.exists():
        linkage_approval_grant(
            user=admin, societies=list(Society.objects.filter(slug__in=["jsp", "jges", "jrs"])),
            purpose="病理・内視鏡・放射線画像の名寄せによる胃がん症例の突合（デモ）",
            valid_until=timezone.localdate() + timedelta(days=365), by=operator,
        )


def seed_demo_opt_outs() -> None:
    """Opt-out requests made after the releases were provided: one reaches the company's grant."""
    if OptOutRequest.objects.filter(extent="delete_provided").exists():
        return
    operator = User.objects.get(email="operator@demo.example.jp")
    endoscopy = Dataset.objects.filter(slug="jges-upper-gi-endoscopy").select_related("society").first()
    radiology = Dataset.objects.filter(slug="jrs-chest-ct").select_related("society").first()
    if endoscopy is not None:
        # Patient 3 asks the endoscopy society to delete what was provided: the company is told.
        admin = endoscopy.society.memberships.filter(role="admin").select_related("user").first()
        _record_request(endoscopy.society, admin.user if admin else operator, 3, extent="delete_provided")
    if radiology is not None:
        # Patient 5 asks radiology to stop future use only.
        _record_request(radiology.society, operator, 5, extent="future_only")


def _record_request(society: Society, by: User, patient: int, *, extent: str) -> None:
    optout.optout_request_record(
        society=society, patient_id=demo_patient_id(patient), institution_code=DEMO_INSTITUTION,
        received_at=timezone.now() - timedelta(days=2), channel="counter", requester_type="subject",
        identity_verification="運転免許証により本人確認", all_protocols=True, protocols=[], modalities=[],
        extent=extent, action_taken="delete" if extent == "delete_provided" else "stop_use",
        reason_not_stopped="", by=by,
    )
