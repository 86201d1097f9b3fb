"""MinHash near-duplicate detection joins the default "web-quality" pipeline."""

from django.db import migrations


def add(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    pipeline = Pipeline.objects.filter(name="web-quality").first()
    if pipeline is None or any(s["step"] == "minhash_dedup" for s in pipeline.definition):
        return
    pipeline.definition = [*pipeline.definition, {"step": "minhash_dedup", "params": {}}]
    pipeline.version += 1
    pipeline.save(update_fields=["definition", "version"])


def remove(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    pipeline = Pipeline.objects.filter(name="web-quality").first()
    if pipeline is None:
        return
    pipeline.definition = [s for s in pipeline.definition if s["step"] != "minhash_dedup"]
    pipeline.save(update_fields=["definition"])


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0006_web_quality_exact_dedup")]

    operations = [migrations.RunPython(add, remove)]
