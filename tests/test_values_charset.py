"""MySQL/MariaDB tables are utf8mb4 whatever the database's default character set: on
a database created ``CHARACTER SET latin1`` (the upstream server default), the reference
schema's migrations create every table utf8mb4, and emoji and CJK text round-trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import String, Text, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Database
from storelayer.migrations import MigrationManager
from storelayer.testing import Provisioner, provision_or_skip

WORDS = "duck \N{DUCK} \u6f22\u5b57 \U0001f469\U0001f3fd\u200d\U0001f4bb caf\u00e9"


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "charset_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)


@pytest.fixture
def latin1_db(storelayer_provisioner: Provisioner) -> Iterator[Database]:
    backend = storelayer.get_plugin_manager().backends()["mysql"]
    url: URL = provision_or_skip(storelayer_provisioner, backend)
    db = storelayer.connect(url)
    with db.engine.connect() as connection:
        connection.exec_driver_sql(
            f"ALTER DATABASE `{url.database}` CHARACTER SET latin1 COLLATE latin1_swedish_ci"
        )
        assert connection.scalar(text("SELECT @@character_set_database")) == "latin1"
    yield db
    db.dispose()


def table_charsets(db: Database) -> dict[str, str]:
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE()"
            )
        )
        return {str(name): str(collation) for name, collation in rows}


def test_models_make_utf8mb4_tables_on_a_latin1_database(latin1_db: Database) -> None:
    Base.metadata.create_all(latin1_db.engine)
    assert table_charsets(latin1_db) == {"charset_notes": "utf8mb4_unicode_ci"}
    with latin1_db.session() as s:
        s.repository(Note).create(id=1, title=WORDS, body=WORDS * 1000)
    with latin1_db.read_session() as s:
        note = s.repository(Note).get(1)
    assert note is not None and note.title == WORDS and note.body == WORDS * 1000


def test_reference_migrations_make_utf8mb4_tables_on_a_latin1_database(
    latin1_db: Database,
) -> None:
    with MigrationManager(latin1_db) as migrations:
        migrations.upgrade()
    charsets = table_charsets(latin1_db)
    assert len(charsets) > 3
    assert set(charsets.values()) == {"utf8mb4_unicode_ci"}, charsets
