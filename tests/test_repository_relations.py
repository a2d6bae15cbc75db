"""The repository across relationships, on every backend through both APIs: loader
options, relationship objects in writes, filters and ordering through a relationship
(checked against the related model), rows by key in ``update``/``delete``,
``bulk_create(returning=True)`` and group-by aggregates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from storelayer import Database, NotFound, QueryError

pytestmark = pytest.mark.api_modes


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "rel_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    posts: Mapped[list[Post]] = relationship(back_populates="author", order_by="Post.id")


class Post(Base):
    __tablename__ = "rel_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(40))
    score: Mapped[int] = mapped_column(default=0)
    author_id: Mapped[int] = mapped_column(ForeignKey("rel_authors.id"))
    author: Mapped[Author] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(order_by="Comment.id")


class Comment(Base):
    __tablename__ = "rel_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("rel_posts.id"))
    body: Mapped[str] = mapped_column(String(40))


@pytest.fixture
def blog(database: Database) -> Iterator[Database]:
    """Authors ann (posts a1 score 1, a2 score 3) and bob (post b1 score 5); b1 has two
    comments, a1 one."""
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    with database.session() as s:
        authors, posts = s.repository(Author), s.repository(Post)
        ann, bob = authors.create(name="ann"), authors.create(name="bob")
        a1 = posts.create(title="a1", score=1, author=ann)
        posts.create(title="a2", score=3, author=ann)
        b1 = posts.create(title="b1", score=5, author=bob)
        s.repository(Comment).bulk_create([
            {"post_id": a1.id, "body": "first"},
            {"post_id": b1.id, "body": "nice"},
            {"post_id": b1.id, "body": "great"},
        ])
    yield database
    Base.metadata.drop_all(database.engine)


def titles(posts: list[Post]) -> list[str]:
    return [p.title for p in posts]


def test_relationship_objects_are_accepted_by_create_and_update(blog: Database) -> None:
    with blog.session() as s:
        bob = s.repository(Author).get_by(name="bob")
        post = s.repository(Post).get_by(title="a1")
        moved = s.repository(Post).update(post, author=bob)
        assert moved.author_id == bob.id


def test_filters_cross_relationships_many_to_one_and_collections(blog: Database) -> None:
    with blog.read_session() as s:
        posts = s.repository(Post)
        ann = s.repository(Author).get_by(name="ann")
        assert titles(posts.list(author__name="ann", order_by="id")) == ["a1", "a2"]
        assert titles(posts.list(author=ann, order_by="id")) == ["a1", "a2"]
        assert titles(posts.list(author__ne=ann)) == ["b1"]
        assert titles(posts.list(author__name__in=["bob"], score__gte=2)) == ["b1"]
        assert titles(posts.list(comments__body__like="%ea%")) == ["b1"]  # once, not twice
        assert posts.count(comments__body__isnull=False) == 2
        assert [a.name for a in s.repository(Author).list(posts__score__gt=4)] == ["bob"]


def test_ordering_crosses_a_many_to_one_relationship(blog: Database) -> None:
    with blog.read_session() as s:
        posts = s.repository(Post)
        assert titles(posts.list(order_by=["-author__name", "id"])) == ["b1", "a1", "a2"]
        page = posts.page(1, 2, order_by="author__name,-score")
        assert titles(page.items) == ["a2", "a1"] and page.has_next


def test_names_across_relationships_are_checked(blog: Database) -> None:
    with blog.read_session() as s:
        posts = s.repository(Post)
        with pytest.raises(QueryError, match=r"Author has no column 'nope'.*valid names: id, "
                                             r"name, posts"):
            posts.list(author__nope="x")
        with pytest.raises(QueryError, match=r"'nope'.*author, author_id, comments, id"):
            posts.list(nope__name="x")
        with pytest.raises(QueryError, match="collection"):
            posts.list(order_by="comments__body")
        with pytest.raises(QueryError, match="collection"):
            posts.list(comments=object())
        with pytest.raises(QueryError, match="keyset"):
            posts.keyset(order_by="author__name")


def test_loader_options_load_relationships_with_the_rows(blog: Database) -> None:
    # Through the async API, a relationship that was not loaded cannot be read later
    # (no I/O on attribute access): these reads prove the options were applied.
    eager = [selectinload(Post.comments), selectinload(Post.author)]
    with blog.read_session() as s:
        posts = s.repository(Post)
        listed = posts.list(order_by="id", options=eager)
        assert [len(p.comments) for p in listed] == [1, 0, 2]
        assert listed[2].author.name == "bob"
        key = listed[0].id
    for read in (
        lambda r: r.get(key, options=eager),
        lambda r: r.get_by_id_or_raise(key, options=eager),
        lambda r: r.get_by(title="a1", options=eager),
        lambda r: r.page(1, 1, options=eager).items[0],
        lambda r: r.keyset(limit=1, options=eager).items[0],
    ):
        with blog.read_session() as s:
            post = read(s.repository(Post))
            assert [c.body for c in post.comments] == ["first"] and post.author.name == "ann"
    with blog.session() as s:
        streamed = list(s.repository(Post).stream(order_by="id", options=eager))
        assert [c.body for c in streamed[2].comments] == ["nice", "great"]


def test_rows_are_updated_and_deleted_by_key(blog: Database) -> None:
    with blog.session() as s:
        posts = s.repository(Post)
        key = posts.get_by(title="a2").id
        assert posts.update(key, {"title": "two"}, score=9).score == 9
        assert posts.get_by_id(key).title == "two"
        s.repository(Comment).delete_where(post_id=posts.get_by(title="b1").id)
        posts.delete(posts.get_by(title="b1").id)
        assert posts.get_by_id(10**6) is None
        with pytest.raises(NotFound):
            posts.update(10**6, title="x")
        with pytest.raises(NotFound):
            posts.delete(10**6)
    with blog.read_session() as s:
        assert titles(s.repository(Post).list(order_by="id")) == ["a1", "two"]


def test_bulk_create_returns_the_objects_when_asked(blog: Database) -> None:
    with blog.session() as s:
        ann = s.repository(Author).get_by(name="ann")
        made = s.repository(Post).bulk_create(
            [{"title": f"n{i}", "author_id": ann.id} for i in range(3)]
            + [Post(title="n3", author=ann)],
            returning=True,
        )
        counted = s.repository(Post).bulk_create([{"title": "n4", "author_id": ann.id}])
        assert [p.title for p in made] == ["n0", "n1", "n2", "n3"]
        assert all(isinstance(p.id, int) for p in made) and len({p.id for p in made}) == 4
        assert counted == 1
    with blog.read_session() as s:
        assert s.repository(Post).count(title__like="n%") == 5


def test_group_by_aggregates(blog: Database) -> None:
    with blog.read_session() as s:
        posts = s.repository(Post)
        rows = posts.aggregate(
            group_by="author_id",
            values={"count": "count", "total": "sum:score", "best": "max:score"},
        )
        assert [(r.count, r["total"], r.best) for r in rows] == [(2, 4, 3), (1, 5, 5)]
        (whole,) = posts.aggregate(values={"n": "count", "low": "min:score"})
        assert (whole.n, whole.low) == (3, 1)
        (ann,) = posts.aggregate(author__name="ann", values={"mean": "avg:score"})
        assert float(ann["mean"]) == 2.0
        by_count = posts.aggregate(group_by=["author_id"], order_by="-count")
        assert [r["count"] for r in by_count] == [2, 1]
        with pytest.raises(QueryError, match="unknown function 'median'"):
            posts.aggregate(values={"m": "median:score"})
        with pytest.raises(QueryError, match="no column 'nope'"):
            posts.aggregate(group_by="nope")
