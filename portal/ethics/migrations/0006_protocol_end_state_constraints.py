from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ethics", "0005_end_states_from_closed"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='protocol',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('ended_at__isnull', False), ('status__in', ['completed', 'denied', 'discontinued', 'not_approved', 'not_subject', 'withdrawn'])), models.Q(models.Q(('status__in', ['completed', 'denied', 'discontinued', 'not_approved', 'not_subject', 'withdrawn']), _negated=True), ('ended_at__isnull', True)), _connector='OR'), name='protocol_ended_at_iff_end_state'),
        ),
        migrations.AddConstraint(
            model_name='protocol',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status__in', ['discontinued', 'completed']), _negated=True), models.Q(('end_report', ''), _negated=True), _connector='OR'), name='protocol_ended_research_has_report'),
        ),
    ]
