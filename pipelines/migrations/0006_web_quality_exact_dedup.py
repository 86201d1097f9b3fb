"""Exact dedup joins the default "web-quality" pipeline (its version goes up)."""

from django.db import migrations


def add(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    pipeline = Pipeline.objects.filter(name="web-quality").first()
    if pipeline is None or any(s["step"] == "exact_dedup" for s in pipeline.definition):
        return
    pipeline.definition = [*pipeline.definition, {"step": "exact_dedup", "params": {}}]
    pipeline.version += 1
    pipeline.save(update_fields=["definition", "version"])


def remove(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    pipeline = Pipeline.objects.filter(name="web-quality").first()
    if pipeline is None:
        return
    pipeline.definition = [s for s in pipeline.definition if s["step"] != "exact_dedup"]
    pipeline.save(update_fields=["definition"])


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0005_run_batch_phase")]

    operations = [migrations.RunPython(add, remove)]
