"""Index ``expires_at`` only for the pairs that expire, where the database allows.

The new index is made before the old one goes, so that a database without
transactional DDL (MariaDB, MySQL) always has an index for culling.
"""

import django_keyval.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_keyval", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="keyvalpair",
            index=django_keyval.models.ExpiryIndex(name="django_keyval_expires_idx"),
        ),
        migrations.AlterField(
            model_name="keyvalpair",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="expires at"),
        ),
    ]
