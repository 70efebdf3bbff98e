"""One source of Japanese labels: the catalogue. The documents (ethics notices, agreements,
provision records) print the models' choice labels and catalogue entries, worded as the law and the
guideline word them; no module keeps its own dictionary of Japanese labels."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from portal.access.models import LegalBasis, ProcessingLevel
from portal.access.provision import column_labels
from portal.agreements.documents import term_rows
from portal.agreements.models import Owner
from portal.ethics.models import Decision, Review

# The legal wording the documents printed before the labels moved to the catalogue.
DOCUMENT_WORDING = [
    (LegalBasis.CONSENT, "インフォームド・コンセント"),
    (LegalBasis.OPT_OUT, "倫理指針に基づくオプトアウト"),
    (LegalBasis.ACADEMIC_EXEMPTION, "個人情報保護法第27条第1項第5号〜第7号（学術研究例外）"),
    (LegalBasis.PUBLIC_HEALTH, "個人情報保護法第27条第1項第3号（公衆衛生例外）"),
    (LegalBasis.JOINT_USE, "共同利用"),
    (LegalBasis.OUTSOURCING, "委託"),
    (LegalBasis.PSEUDONYMISED_JOINT_USE, "仮名加工情報の共同利用"),
    (LegalBasis.ANONYMISED, "匿名加工情報"),
    (LegalBasis.NEXT_GENERATION_ACT, "次世代医療基盤法"),
    (ProcessingLevel.PSEUDONYMISED, "仮名加工情報"),
    (ProcessingLevel.ANONYMISED, "匿名加工情報"),
    (ProcessingLevel.STATISTICS, "統計情報"),
    (Review.Type.NEW, "新規申請"),
    (Review.Type.AMENDMENT, "変更申請"),
    (Review.Type.CONTINUING, "継続審査（定期報告）"),
    (Review.Type.COMPLETION, "終了報告"),
    (Review.Mode.FULL_BOARD, "本審査（委員会審議）"),
    (Review.Mode.EXPEDITED, "迅速審査"),
    (Review.Mode.CENTRAL, "一括審査"),
    (Review.Mode.NOTIFICATION, "報告事項"),
    (Review.ExpeditedGround.REVIEWED_ELSEWHERE, "他の倫理審査委員会で審査済みの多機関共同研究"),
    (Review.ExpeditedGround.MINOR_CHANGE, "研究計画書の軽微な変更"),
    (Review.ExpeditedGround.NO_INVASION_NO_INTERVENTION, "侵襲を伴わない研究であって介入を行わないもの"),
    (Review.ExpeditedGround.MINIMAL_NO_INTERVENTION, "軽微な侵襲を伴う研究であって介入を行わないもの"),
    (Decision.Outcome.APPROVED, "承認"),
    (Decision.Outcome.CONDITIONS, "条件付き承認"),
    (Decision.Outcome.DEFERRED, "継続審査"),
    (Decision.Outcome.NOT_APPROVED, "不承認"),
    (Decision.Outcome.NOT_SUBJECT, "非該当"),
    (Decision.Method.UNANIMOUS, "全会一致"),
    (Decision.Method.MAJORITY, "多数決"),
    (Owner.SOCIETY, "学会"),
    (Owner.PROVIDING_INSTITUTIONS, "提供元の医療機関"),
    (Owner.USER, "利用者"),
    (Owner.JOINT, "共有"),
]


@pytest.mark.parametrize(("choice", "japanese"), DOCUMENT_WORDING, ids=lambda value: str(getattr(value, "value", "")))
def test_choice_label_in_japanese_is_the_documents_wording(choice, japanese):
    with translation.override("ja"):
        assert str(choice.label) == japanese


def test_agreement_term_rows_in_japanese_keep_the_documents_wording():
    terms = {
        "images_owner": "institutions", "annotated_data_owner": "society", "model_owner": "joint",
        "model_licence_to_society": True, "patent_notice_required": True, "patent_consent_required": False,
        "patent_licence_back": True, "publication_duties_ja": "", "acknowledgement_required": True,
        "cite_dataset_release": True, "commercial_use_allowed": True, "fee_jpy": 500000, "fee_terms_ja": "一括",
        "term_months": 24, "extension_allowed": False, "destruction_at_end": True,
        "deletion_certificate_required": False, "onward_transfer_prohibited": True,
        "reidentification_prohibited": False, "contact_subjects_prohibited": True,
        "security_obligations_ja": "ログを保存する。", "benefit_sharing_ja": "", "resign_on_new_version": False,
    }

    with translation.override("ja"):
        rows = term_rows(terms)

    assert rows == [
        ("画像の帰属", "提供元の医療機関"),
        ("アノテーション済み学習データの帰属", "学会"),
        ("データから派生したモデル及びアルゴリズムの帰属", "共有"),
        ("派生モデルの学会への研究目的での無償ライセンス", "要"),
        ("特許出願の学会への通知", "要"),
        ("特許出願についての学会の同意", "不要"),
        ("学会への特許のライセンスバック", "要"),
        ("成果の公表及び謝辞に関する義務", "なし"),
        ("学会への謝辞の記載", "要"),
        ("データセット及びリリースの引用", "要"),
        ("商用利用", "可"),
        ("利用料", "500,000円"),
        ("利用料の条件", "一括"),
        ("利用期間", "24か月"),
        ("利用期間の延長", "不可"),
        ("利用終了時のデータの消去", "要"),
        ("データ消去証明書の提出", "不要"),
        ("第三者への再提供", "禁止"),
        ("再識別", "禁止しない"),
        ("研究対象者への接触", "禁止"),
        ("安全管理措置の義務", "ログを保存する。"),
        ("アノテーション作業者への利益還元", "なし"),
        ("新しい版の公開時の再署名", "不要"),
    ]
    with translation.override("ja"):
        assert term_rows({**terms, "fee_jpy": 0})[11] == ("利用料", "無償")


def test_provision_record_labels_in_japanese_are_the_legal_items():
    with translation.override("ja"):
        labels = column_labels()

    assert labels[:8] == ["付与番号", "提供開始日", "提供終了日", "提供元機関の名称", "提供元機関の住所",
                          "提供元機関の長（代表者）の氏名", "提供元の研究責任者", "提供先機関の名称"]
    assert labels[17:19] == ["提供の法的根拠", "加工の状態"]
    assert labels[-1] == "作成日時"
    assert all(not label.isascii() for label in labels), labels


def _ja_label_dicts(path: Path) -> list[str]:
    """Module-level names ending in _JA bound to a dict (literal, comprehension or union)."""
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        for target in targets:
            if (isinstance(target, ast.Name) and target.id.endswith("_JA")
                    and isinstance(value, (ast.Dict, ast.DictComp, ast.BinOp, ast.Call))):
                found.append(f"{path.relative_to(settings.BASE_DIR)}: {target.id}")
    return found


def test_no_module_keeps_its_own_dictionary_of_japanese_labels():
    modules = sorted((Path(settings.BASE_DIR) / "portal").rglob("*.py"))

    found = [hit for path in modules if "migrations" not in path.parts for hit in _ja_label_dicts(path)]

    assert found == []
