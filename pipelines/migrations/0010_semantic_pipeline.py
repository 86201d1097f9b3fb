"""A default "semantic" pipeline: embeddings, semantic dedup and the similarity index.

Its steps share one embedding model, so documents are embedded once (on a GPU
worker when one listens on the gpu queue, else on the CPU).
"""

from django.db import migrations

DEFINITION = [
    {"step": "semantic_dedup", "params": {}},
    {"step": "similarity_index", "params": {}},
]


def add(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    Pipeline.objects.get_or_create(
        name="semantic",
        defaults={
            "slug": "semantic",
            "description": "Sentence embeddings (all-MiniLM-L6-v2), semantic near-duplicates "
            "(SemDeDup) and the index behind similar documents and search.",
            "definition": DEFINITION,
            "batch_size": 1000,
        },
    )


def remove(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    Pipeline.objects.filter(name="semantic", runs__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0009_quality_classifier")]

    operations = [migrations.RunPython(add, remove)]
