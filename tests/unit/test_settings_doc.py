"""The README's settings table is generated from the settings classes and is never stale."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from services.kit import settings_doc
from services.kit.settings import ENV_PREFIX


def _fields() -> set[str]:
    names: set[str] = set()
    for _, paths in settings_doc.COMMANDS:
        for path in paths:
            module, _, name = path.partition(":")
            names |= set(getattr(importlib.import_module(module), name).model_fields)
    return names


def test_the_readme_table_is_the_generated_one() -> None:
    readme = settings_doc.README.read_text(encoding="utf-8")
    table = settings_doc.render(settings_doc.rows())
    assert settings_doc.updated(readme, table) == readme, "README.md is stale: run `make schemas`"


def test_every_setting_has_a_row_with_a_meaning() -> None:
    rows = settings_doc.rows()
    assert _fields() <= {row.name for row in rows}
    assert settings_doc.undocumented(rows) == []
    readme = settings_doc.README.read_text(encoding="utf-8")
    for name in _fields():
        assert f"`{ENV_PREFIX}{name}`" in readme


def test_the_table_says_what_each_command_does_without_kafka() -> None:
    row = next(row for row in settings_doc.rows() if row.name == "KAFKA_BOOTSTRAP")
    assert row.meaning is not None
    assert "`ingest` refuses to start without it" in row.meaning
    assert "run" not in row.readers  # the embedded mode never reads it
    assert row.defaults["aggregator"] != row.defaults["ingest"]


def test_a_check_of_a_stale_table_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\n")
    monkeypatch.setattr(settings_doc, "README", readme)
    assert settings_doc.main(["--check"]) == 1
    assert settings_doc.main([]) == 0
    assert settings_doc.main(["--check"]) == 0
    assert "`CALLPULSE_TIMEZONE`" in readme.read_text()
