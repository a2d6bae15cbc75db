"""The application's own models, on their own declarative base (not the reference
schema's): a project has tasks, a task has comments."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, Index, MetaData, String
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storelayer.reference.base import (
    NAMING_CONVENTION,
    TYPE_ANNOTATION_MAP,
    IntegerPKMixin,
    ModelMixin,
    TimestampMixin,
)
from storelayer.reference.types import ID_TYPE, LONG_TEXT


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Model(IntegerPKMixin, TimestampMixin, ModelMixin, Base):
    __abstract__ = True


class Status(str, enum.Enum):
    OPEN = "open"
    DONE = "done"


class Project(Model):
    __tablename__ = "tb_projects"
    __repr_attrs__ = ("name",)

    name: Mapped[str] = mapped_column(String(100), unique=True)
    tasks: Mapped[list[Task]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="Task.id"
    )


class Task(Model):
    __tablename__ = "tb_tasks"
    __repr_attrs__ = ("title",)
    __table_args__ = (Index(None, "project_id", "status"),)

    project_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("tb_projects.id"))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(
        Enum(Status, name="tb_task_status", native_enum=False, create_constraint=True,
             length=16, values_callable=lambda e: [m.value for m in e]),
        default=Status.OPEN,
    )
    project: Mapped[Project] = relationship(back_populates="tasks")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="Comment.id"
    )


class Comment(Model):
    __tablename__ = "tb_comments"

    task_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("tb_tasks.id"), index=True)
    body: Mapped[str] = mapped_column(LONG_TEXT)
    task: Mapped[Task] = relationship(back_populates="comments")
