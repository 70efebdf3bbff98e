"""The security self-assessment (セキュリティチェックリスト, REGULATION.md a7).

Modelled on the NBDC ヒトデータ取扱いセキュリティガイドライン (データ利用者向け) checklist and the
3省2 guideline headings. Every item is answered with a status (対応済/一部/未対応/該当なし), evidence
(unless not applicable) and an optional comment, stored as ``SecurityAnswer`` rows keyed by ``key``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class SecurityItem:
    key: str
    label_ja: str
    label_en: str
    category: str


class Category:
    ORGANISATIONAL = "organisational"
    PHYSICAL = "physical"
    TECHNICAL = "technical"
    PERSONAL_DATA = "personal_data"
    CLOUD = "cloud"


CATEGORY_LABELS = {
    Category.ORGANISATIONAL: _("Organisational measures"),
    Category.PHYSICAL: _("Physical measures"),
    Category.TECHNICAL: _("Technical measures"),
    Category.PERSONAL_DATA: _("Personal-data specific measures"),
    Category.CLOUD: _("Cloud and off-premise servers"),
}

_O, _P, _T, _D, _C = (Category.ORGANISATIONAL, Category.PHYSICAL, Category.TECHNICAL,
                      Category.PERSONAL_DATA, Category.CLOUD)

SECURITY_ITEMS: tuple[SecurityItem, ...] = (
    SecurityItem("security_manager", "情報セキュリティ責任者・情報管理者の指名", "Information security manager named", _O),
    SecurityItem("rules_procedures", "規程・手順書の整備", "Security rules and procedures", _O),
    SecurityItem("contractor_management", "委託先管理と責任分界（契約・SLA・サービス仕様適合開示書）",
                 "Contractor management and division of responsibility (contracts, SLA, cloud disclosure)", _O),
    SecurityItem("training_records", "教育・研修の記録", "Security training records", _O),
    SecurityItem("incident_reporting", "インシデント報告体制（提供元・個人情報保護委員会への漏えい等報告）",
                 "Incident reporting (to the data provider and leak reports to the PPC)", _O),
    SecurityItem("audit", "監査", "Audits", _O),
    SecurityItem("server_location", "データサーバの設置場所と入退室管理（施錠・識別・記録）",
                 "Server location and room access control (locks, identification, records)", _P),
    SecurityItem("theft_prevention", "盗難防止", "Theft prevention", _P),
    SecurityItem("media_management", "記録媒体の管理（持出し禁止・暗号化）",
                 "Storage media management (no removal, encryption)", _P),
    SecurityItem("registered_users_only", "利用者の限定（登録利用者のみ）", "Use limited to registered users", _T),
    SecurityItem("authentication", "利用者認証（固有ID・強固なパスワード・二要素認証）",
                 "User authentication (unique IDs, strong passwords, two-factor authentication)", _T),
    SecurityItem("access_rights", "アクセス権管理", "Access rights management", _T),
    SecurityItem("access_logs", "アクセスログの取得・保存・定期確認", "Access logs kept and reviewed", _T),
    SecurityItem("time_sync", "時刻同期", "Clock synchronisation", _T),
    SecurityItem("malware_patching", "マルウェア対策・OS/ソフトウェアの更新と脆弱性対応",
                 "Malware protection, updates and vulnerability handling", _T),
    SecurityItem("network_isolation", "ファイアウォール・インターネットからの隔離",
                 "Firewall and isolation from the internet", _T),
    SecurityItem("transport_encryption", "通信の暗号化（TLS/VPN）", "Encryption in transit (TLS/VPN)", _T),
    SecurityItem("storage_encryption", "保存時の暗号化", "Encryption at rest", _T),
    SecurityItem("backup", "バックアップ（複数世代・オフライン）", "Backups (several generations, offline)", _T),
    SecurityItem("no_unpermitted_copies", "許可されたもの以外の複製をしない", "No copies except permitted ones", _T),
    SecurityItem("screen_lock", "画面ロック", "Screen lock", _T),
    SecurityItem("secure_deletion", "利用終了時の完全消去と消去証明", "Complete deletion at end of use, with a certificate", _T),
    SecurityItem("key_table_separation", "仮名加工情報の削除情報等の分離・アクセス制限",
                 "Pseudonymisation key tables kept apart and access-controlled", _D),
    SecurityItem("anonymisation_method_protection", "匿名加工情報の加工方法等情報の保護",
                 "Anonymisation method information protected", _D),
    SecurityItem("no_reidentification", "再識別・他の情報との照合の禁止",
                 "No re-identification or cross-matching with other data", _D),
    SecurityItem("approved_external_server", "機関外サーバの要件（NBDC承認相当）",
                 "Off-premise server meets the approved external-server requirements", _C),
    SecurityItem("server_region", "サーバの所在地域（国内・国外）", "Server region (Japan or abroad)", _C),
)

ITEMS_BY_KEY = {item.key: item for item in SECURITY_ITEMS}

# The items a security level (NBDC: 標準レベル Type I / ハイレベル Type II) needs answered "in place"
# (対応済) in the self-assessment. Type II adds the server room, isolation from the internet,
# encryption at rest, backups, audits and contractor management to what Type I needs.
TYPE_I_ITEMS: tuple[str, ...] = (
    "security_manager", "rules_procedures", "training_records", "incident_reporting", "media_management",
    "registered_users_only", "authentication", "access_rights", "access_logs", "malware_patching",
    "transport_encryption", "no_unpermitted_copies", "screen_lock", "secure_deletion", "no_reidentification",
)
TYPE_II_ITEMS: tuple[str, ...] = (
    *TYPE_I_ITEMS, "contractor_management", "audit", "server_location", "theft_prevention", "time_sync", "network_isolation",
    "storage_encryption", "backup",
)
LEVEL_ITEMS: dict[str, tuple[str, ...]] = {"type_1": TYPE_I_ITEMS, "type_2": TYPE_II_ITEMS}
# Data used on a server outside the institution: that server must meet the external-server rules.
EXTERNAL_SERVER_ITEM = "approved_external_server"


def items_missing_for_level(level: str, statuses: dict[str, str], *, external_server: bool = False) -> list[SecurityItem]:
    """The items ``level`` needs whose answer (``statuses``: key → status) is not "done", in checklist order."""
    needed = set(LEVEL_ITEMS.get(level, ()))
    if external_server:
        needed.add(EXTERNAL_SERVER_ITEM)
    return [item for item in SECURITY_ITEMS if item.key in needed and statuses.get(item.key) != "done"]
