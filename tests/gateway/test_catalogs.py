"""The page's catalogs: complete, consistent with the templates, compiled at install, and
a new language is nothing but a new catalog."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from gateway.pages import catalogs, render_history
from gateway.pages.catalogs import LOCALE_DIR, SOURCE_LANGUAGE, extract, languages
from gateway.pages.language import pick_language
from gateway.pages.words import words
from tests.gateway.test_pages import JSON_URL, SELF_URL, blended_recalled_import

PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def read(path: Path) -> Catalog:
    with path.open("rb") as source:
        return read_po(source)


def ids(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What `python -m gateway.pages update` extracts from the templates and code now."""
    pot = tmp_path_factory.mktemp("catalogs") / "messages.pot"
    extract(pot)
    return read(pot)


def test_every_catalog_holds_exactly_the_messages_the_page_uses(extracted: Catalog) -> None:
    assert ids(read(LOCALE_DIR / "messages.pot")) == ids(extracted), (
        "run: python -m gateway.pages update"
    )
    for lang in languages():
        assert ids(read(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po")) == ids(extracted), lang


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != SOURCE_LANGUAGE])
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    catalog = read(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po")
    for message in catalog:
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string
        translations = [strings] if isinstance(strings, str) else list(strings or ())
        assert translations, (lang, source)
        assert all(translations), (lang, source)
        assert not message.fuzzy, (lang, source)
        for translated in translations:
            want = sorted(PLACEHOLDER.findall(source))
            assert sorted(PLACEHOLDER.findall(translated)) == want, (lang, source, translated)


def test_the_chinese_page_uses_the_policy_texts_words() -> None:
    zh = words("zh")
    # 追溯, 一站式追溯查询, 召回, 口岸查验, 进口消费品, 销毁, 退运, 抽样检验
    assert zh.gettext("One-stop trace lookup") == "一站式追溯查询"
    assert zh.gettext("Inspections") == "检验与口岸查验"
    assert zh.gettext("Imported product") == "进口消费品"
    assert zh.disposition("recalled") == "已召回"
    assert zh.disposition("destroyed") == "已销毁"
    assert zh.disposition("returned") == "已退运"
    assert zh.step("sampling", None, None) == "抽样检验"
    # The jargon the issue names is gone in both languages.
    assert zh.disposition("in_progress") == "流通中"
    assert words("en").disposition("in_progress") == "In the supply chain"


@pytest.fixture
def with_french(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The catalogs plus a French one (a few messages, the rest falls back to English)."""
    root = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, root, ignore=shutil.ignore_patterns("*.mo"))
    french = Catalog(locale="fr_FR")
    for msgid, msgstr in {
        "English": "Français",
        "Journey": "Parcours",
        "Recalled": "Rappelé",
    }.items():
        french.add(msgid, msgstr)
    french.add("Shipped", "Expédié", context="bizStep")
    french.add("d MMM y", "d MMM y", context="date format")
    (root / "fr" / "LC_MESSAGES").mkdir(parents=True)
    with (root / "fr" / "LC_MESSAGES" / "messages.po").open("wb") as out:
        write_po(out, french)
    monkeypatch.setattr(catalogs, "LOCALE_DIR", root)
    caches = (catalogs.languages, catalogs.translations, words)
    for cached in caches:
        cached.cache_clear()
    yield
    monkeypatch.undo()
    for cached in caches:
        cached.cache_clear()


def test_a_third_language_is_a_new_catalog(with_french: None) -> None:
    assert languages() == ("zh", "en", "fr")
    assert pick_language("fr-FR,fr;q=0.9", None) == "fr"
    page = render_history(blended_recalled_import(), "fr", self_url=SELF_URL, json_url=JSON_URL)
    assert '<html lang="fr-FR">' in page
    assert "<h2>Rappelé</h2>" in page
    assert 'id="journey">Parcours</h2>' in page
    assert '<span class="step">Expédié</span>' in page
    assert "3 sept. 2026" in page  # CLDR month names, from Babel
    assert "Nouvelle-Zélande" in page  # and country names
    assert ">Français</a>" in page  # the switch offers it, in its own name
    assert "Packed" in page  # untranslated messages fall back to English


def test_installing_compiles_the_catalogs(tmp_path: Path) -> None:
    """What setup.py's build step does: every .po becomes a .mo gettext can load."""
    written = catalogs.compile_catalogs(LOCALE_DIR, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(
        f"{lang}/LC_MESSAGES/messages.mo" for lang in languages()
    )
    compiled = catalogs.translations("zh", tmp_path)
    assert compiled.gettext("Journey") == "流通轨迹"
