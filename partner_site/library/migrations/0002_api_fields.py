"""Fields for the storage pipelines' API: the pipeline's own id, a change time, and what the
pipeline reported of each file (content type, size)."""

from django.db import migrations, models
from django.db.models import F


def updated_is_created(apps, schema_editor):
    # Existing rows were last changed when they were made, not when this migration ran.
    apps.get_model("library", "Recording").objects.update(updated_at=F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('library', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='mediafile',
            name='content_type',
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name='mediafile',
            name='size',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='recording',
            name='external_id',
            field=models.CharField(blank=True, max_length=200, null=True, unique=True),
        ),
        migrations.AddField(
            model_name='recording',
            name='updated_at',
            field=models.DateTimeField(auto_now=True, db_index=True),
        ),
        migrations.RunPython(updated_is_created, migrations.RunPython.noop),
    ]
