"""On PostgreSQL, refuse changes to written releases in the database itself.

The models refuse them too (``DatasetRelease.save``/``delete``, ``ReleaseFile.save``/``delete`` and
their querysets), but triggers also stop raw SQL and other tools. A release file is never updated
or deleted; a release may only have its withdrawal recorded (``DatasetRelease.WITHDRAWAL_FIELDS``),
once. TRUNCATE is not a row operation and stays possible (the test suite empties tables with it).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION datasets_releasefile_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'release files are immutable: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER datasets_releasefile_no_update_delete
    BEFORE UPDATE OR DELETE ON datasets_releasefile
    FOR EACH ROW EXECUTE FUNCTION datasets_releasefile_refuse_change();

CREATE OR REPLACE FUNCTION datasets_release_refuse_change() RETURNS trigger AS $$
DECLARE
    withdrawal text[] := ARRAY['status', 'withdrawn_at', 'withdrawn_by_id', 'withdrawal_reason'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'releases are never deleted: DELETE refused on %', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (to_jsonb(NEW) - withdrawal) IS DISTINCT FROM (to_jsonb(OLD) - withdrawal) THEN
        RAISE EXCEPTION 'releases are never edited: only their withdrawal may be recorded'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'withdrawn' AND (to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD)) THEN
        RAISE EXCEPTION 'a withdrawn release stays withdrawn'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER datasets_release_only_withdrawal
    BEFORE UPDATE OR DELETE ON datasets_datasetrelease
    FOR EACH ROW EXECUTE FUNCTION datasets_release_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS datasets_release_only_withdrawal ON datasets_datasetrelease;
DROP FUNCTION IF EXISTS datasets_release_refuse_change();
DROP TRIGGER IF EXISTS datasets_releasefile_no_update_delete ON datasets_releasefile;
DROP FUNCTION IF EXISTS datasets_releasefile_refuse_change();
"""


def create_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_datasets_releases")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
