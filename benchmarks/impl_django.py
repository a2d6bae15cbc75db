"""The Django ORM, configured in-process with ``settings.configure``: one database alias
per backend, an unmanaged model on the same ``bench_item`` table, one ``atomic()`` block
per unit of work. MySQL goes through PyMySQL (``install_as_MySQLdb``) so every
implementation uses the same driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.impl_base import Implementation, Unavailable, tally
from benchmarks.schema import SQLITE_PRAGMAS, TABLE, UPDATE_COLUMNS
from benchmarks.targets import Target
from benchmarks.workload import CountQuery, Expected, PageQuery, Row

_MODEL: Any = None


def database_settings(target: Target) -> dict[str, Any]:
    """``settings.DATABASES`` entry for ``target``."""
    if target.backend == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": target.path,
            "OPTIONS": {"init_command": ";".join(SQLITE_PRAGMAS)},
        }
    engine = {"postgresql": "postgresql", "mysql": "mysql"}[target.backend]
    options = {"charset": "utf8mb4"} if target.backend == "mysql" else {}
    return {
        "ENGINE": f"django.db.backends.{engine}",
        "NAME": target.database,
        "USER": target.user,
        "PASSWORD": target.password,
        "HOST": target.host,
        "PORT": str(target.port),
        "OPTIONS": options,
    }


def _define_model() -> Any:
    """The unmanaged model (defined once, after ``django.setup()``)."""
    from django.db import models

    class DjangoBenchItem(models.Model):  # type: ignore[misc]  # Django ships no types
        id = models.AutoField(primary_key=True)
        name = models.CharField(max_length=100, unique=True)
        category = models.CharField(max_length=20, db_index=True)
        price = models.DecimalField(max_digits=10, decimal_places=2)
        quantity = models.IntegerField()
        created_at = models.DateTimeField()

        class Meta:
            managed = False
            db_table = TABLE
            app_label = "storelayer_bench"

    return DjangoBenchItem


class DjangoImplementation(Implementation):
    """Django ``QuerySet`` API on alias ``<backend>``."""

    name = "django"

    @classmethod
    def prepare(cls, targets: Sequence[Target]) -> None:
        global _MODEL
        import django
        from django.conf import settings

        if settings.configured:
            return
        if any(t.backend == "mysql" for t in targets):
            import pymysql

            pymysql.install_as_MySQLdb()
        databases: dict[str, Any] = {"default": {}}
        databases.update({t.backend: database_settings(t) for t in targets})
        settings.configure(
            DATABASES=databases, INSTALLED_APPS=[], USE_TZ=False, DEBUG=False,
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
        django.setup()
        _MODEL = _define_model()

    def open(self) -> None:
        from django.db import connections

        if _MODEL is None:
            raise Unavailable("Django was not prepared for this backend")
        self.alias = self.target.backend
        self.model = _MODEL
        self.objects = _MODEL.objects.using(self.alias)
        connections[self.alias].ensure_connection()

    def close(self) -> None:
        from django.db import connections

        connections[self.alias].close()

    def _atomic(self) -> Any:
        from django.db import transaction

        return transaction.atomic(using=self.alias)

    def insert(self, rows: list[Row]) -> None:
        with self._atomic():
            self.objects.bulk_create([self.model(**row) for row in rows])

    def get_one(self, id_: int) -> int | None:
        with self._atomic():
            quantity: int = self.objects.get(pk=id_).quantity
        return quantity

    def page(self, q: PageQuery) -> list[int]:
        with self._atomic():
            items = list(
                self.objects.filter(category=q.category, price__gte=q.min_price)
                .order_by("-id")[q.offset : q.offset + q.limit]
            )
        return [item.id for item in items]

    def count(self, q: CountQuery) -> int:
        with self._atomic():
            count: int = self.objects.filter(
                category=q.category, quantity__gte=q.min_quantity
            ).count()
        return count

    def upsert(self, rows: list[Row]) -> None:
        from django.db import connections

        features = connections[self.alias].features
        # MySQL's ON DUPLICATE KEY UPDATE names no conflict target; Django refuses one.
        with_target = features.supports_update_conflicts_with_target
        target = {"unique_fields": ["name"]} if with_target else {}
        with self._atomic():
            self.objects.bulk_create(
                [self.model(**row) for row in rows],
                update_conflicts=True, update_fields=list(UPDATE_COLUMNS), **target,
            )

    def stream(self, batch_size: int) -> Expected:
        with self._atomic():
            return tally(item.quantity for item in self.objects.iterator(chunk_size=batch_size))
