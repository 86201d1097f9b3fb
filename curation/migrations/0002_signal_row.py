"""The signal table: one row per document, one typed column per signal, one partition per dataset.

Chosen over a narrow (document, signal, value) table and a JSONB column by
measurement: bench/signal_storage_bench.py and the README's performance section.
Columns (``s_<signal id>``) are added by ``services.signals.signal_define`` and
partitions (``curation_signal_row_d<dataset id>``) by ``services.signals``.
"""

from django.db import migrations

CREATE = """
CREATE TABLE curation_signal_row (
    dataset_id bigint NOT NULL,
    document_id bigint NOT NULL,
    PRIMARY KEY (dataset_id, document_id)
) PARTITION BY LIST (dataset_id);
"""

DROP = "DROP TABLE curation_signal_row;"


class Migration(migrations.Migration):
    dependencies = [("curation", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
