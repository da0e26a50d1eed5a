"""Locks get a table of their own; pairs keep the version their life began at."""

import django.utils.timezone
import django_keyval.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_keyval", "0002_partial_expiry_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="keyvalpair",
            name="first_version",
            field=models.BigIntegerField(
                default=1,
                help_text="The version the pair had when it was created: it is new while the two match.",
                verbose_name="first version",
            ),
        ),
        migrations.AlterField(
            model_name="keyvalpair",
            name="version",
            field=models.BigIntegerField(
                default=1,
                help_text="Each write adds one, also when the pair is created again over an expired row.",
                verbose_name="version",
            ),
        ),
        migrations.CreateModel(
            name="KeyValLock",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "store",
                    django_keyval.models.BinaryCollationCharField(
                        max_length=200, verbose_name="store"
                    ),
                ),
                (
                    "name",
                    django_keyval.models.BinaryCollationCharField(
                        max_length=500, verbose_name="name"
                    ),
                ),
                (
                    "owner",
                    django_keyval.models.BinaryCollationCharField(
                        blank=True,
                        help_text="The random token of the Lock that holds it; empty once released.",
                        max_length=32,
                        verbose_name="owner",
                    ),
                ),
                (
                    "lease_end",
                    models.BigIntegerField(
                        default=0,
                        help_text="In microseconds since 1970 (UTC); the lock is free from then on.",
                        verbose_name="end of the lease",
                    ),
                ),
                (
                    "token",
                    models.BigIntegerField(
                        help_text="The token of the latest acquisition; only goes up.",
                        verbose_name="fencing token",
                    ),
                ),
                (
                    "updated_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="updated at"
                    ),
                ),
            ],
            options={
                "verbose_name": "lock",
                "verbose_name_plural": "locks",
                "ordering": ["store", "name"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("store", "name"), name="django_keyval_lock_uniq"
                    )
                ],
            },
        ),
    ]
