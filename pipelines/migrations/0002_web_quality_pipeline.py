"""The default pipeline "web-quality": heuristic signals, language id and PII.

Parameters are left at each step's defaults (normalised when a run snapshots
the definition); dedup steps join it when their corpus-level runner lands.
"""

from django.db import migrations

STEPS = [
    "doc_stats",
    "gopher_quality",
    "gopher_repetition",
    "c4_quality",
    "fineweb_quality",
    "language_id",
    "pii",
]


def create(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    Pipeline.objects.get_or_create(
        name="web-quality",
        defaults={
            "slug": "web-quality",
            "description": (
                "Quality signals for web text: document statistics, the Gopher quality and "
                "repetition rules, C4 and FineWeb line rules (numbers and verdicts), "
                "language id and PII counts with spans."
            ),
            "definition": [{"step": name, "params": {}} for name in STEPS],
            "batch_size": 1000,
        },
    )


def remove(apps, schema_editor):
    apps.get_model("pipelines", "Pipeline").objects.filter(name="web-quality").delete()


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0001_initial")]

    operations = [migrations.RunPython(create, remove)]
