from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0007_text_hits"),
    ]

    operations = [
        # Bits were keyed by the query as typed; they are now keyed by its tsquery.
        # The table is a cache: emptying it only costs rebuilds.
        migrations.RunSQL("DELETE FROM curation_texthits", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="texthits",
            name="text",
            field=models.TextField(
                help_text="The query as PostgreSQL reads it: websearch_to_tsquery(..)::text."
            ),
        ),
        migrations.AddField(
            model_name="texthits",
            name="common",
            field=models.BooleanField(
                default=False,
                help_text="One of the dataset's most common words, built ahead of any query.",
            ),
        ),
    ]
