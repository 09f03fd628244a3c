"""Prompt templates: reusable prompts with spawn defaults, per project or for every project."""

from __future__ import annotations

from .database import Database
from .records import _TEMPLATE_COLS, TemplateRecord


class TemplateTables(Database):
    """The ``templates`` table."""

    def put_template(self, template: TemplateRecord) -> tuple[TemplateRecord, bool]:
        """Add a template, or replace the one of its name and project (keeping its creation time);
        returns it as stored and whether it replaced one."""
        cols = ", ".join(_TEMPLATE_COLS)
        with self._db(write=True) as conn:
            old = conn.execute("SELECT created_at FROM templates WHERE project_path = ? AND name = ?",
                               (template.project_path, template.name)).fetchone()
            if old is not None:
                template = template.model_copy(update={"created_at": old[0]})
            marks = ", ".join("?" for _ in _TEMPLATE_COLS)
            conn.execute(f"INSERT OR REPLACE INTO templates ({cols}) VALUES ({marks})",
                         [getattr(template, c) for c in _TEMPLATE_COLS])
        return template, old is not None

    def get_template(self, project_path: str, name: str) -> TemplateRecord | None:
        """The template ``name`` of exactly this project ("" : of every project), or None."""
        with self._db() as conn:
            row = conn.execute(f"SELECT {', '.join(_TEMPLATE_COLS)} FROM templates"
                               " WHERE project_path = ? AND name = ?", (project_path, name)).fetchone()
        return TemplateRecord.model_validate(dict(zip(_TEMPLATE_COLS, row))) if row else None

    def list_templates(self, *, name: str | None = None) -> list[TemplateRecord]:
        """Every template (or every one called ``name``), by name, then project ("" first)."""
        where, params = (" WHERE name = ?", [name]) if name is not None else ("", [])
        with self._db() as conn:
            rows = conn.execute(f"SELECT {', '.join(_TEMPLATE_COLS)} FROM templates{where}"
                                " ORDER BY name, project_path", params).fetchall()
        return [TemplateRecord.model_validate(dict(zip(_TEMPLATE_COLS, r))) for r in rows]

    def delete_template(self, project_path: str, name: str) -> bool:
        """Remove a template; False when there was none."""
        with self._db(write=True) as conn:
            cursor = conn.execute("DELETE FROM templates WHERE project_path = ? AND name = ?", (project_path, name))
        return cursor.rowcount == 1
