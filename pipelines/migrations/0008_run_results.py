from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0007_web_quality_minhash_dedup")]

    operations = [
        migrations.AddField(
            model_name="pipelinerun",
            name="results",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What corpus phases report, by step name: e.g. semantic dedup's "
                '{"semantic_dedup": {"eps": [{"eps": 0.05, "removed": 120}], "clusters": 100}}.',
            ),
        ),
    ]
