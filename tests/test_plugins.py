"""Plugins (docs/plugins.md): every hook documented, the nginx site agreeing with the kinds, and a plugin
package built here, installed on a temporary sys.path entry with its own *.dist-info (so
importlib.metadata finds its entry point, as after `pip install`), working through the app end to end
with no edit to Kiln: a new kind, an extra step, page blocks, the published and deleted hooks, a command.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln import hookspecs, plugins
from kiln.hookspecs import hookimpl
from kiln.mediatypes import inline_types, kinds, served_types
from tests.conftest import csrf, register

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "kiln_foo_plugin"

PLUGIN_CODE = '''
"""A tiny third-party kind: ".kilnfoo" files (a magic line, then text), with a thumbnail."""

from pathlib import Path

import click
from markupsafe import Markup
from PIL import Image, ImageDraw

from kiln.hookspecs import hookimpl
from kiln.mediatypes.base import Identified, MediaRejected, RenditionSpec, StepDef, StepResult, output_spec
from kiln.mediatypes.image.still import render_still, still_params

MAGIC = b"KILNFOO\\n"
EVENTS = []  # (hook, media_id, kind): what the test looks at


class FooKind:
    name = "foo"
    label = "Foo note"
    formats = "Foo notes (.kilnfoo)"
    order = 60
    file_extensions = frozenset({".kilnfoo"})
    mime_extensions = {"text/x-kilnfoo": ".kilnfoo"}
    served_types = {".jpg": "image/jpeg", ".webp": "image/webp"}
    inline_types = frozenset({".jpg", ".webp"})
    settings_section = None

    def identify(self, path, head, settings):
        if not head.startswith(MAGIC):
            return None
        if len(head) > 4096:
            raise MediaRejected("A foo note is at most 4 KiB.", code="too_large")
        return Identified(kind=self.name, mime_type="text/x-kilnfoo")

    def steps(self, settings):
        spec = RenditionSpec("thumbnail", still_params(settings, settings.image.thumbnail_size))
        return [StepDef("thumbnail", (spec,))]

    def run_step(self, step, ctx):
        words = ctx.source.read_bytes()[len(MAGIC):].decode("utf-8", "replace")
        picture = Image.new("RGB", (320, 200), "lightyellow")
        ImageDraw.Draw(picture).text((10, 10), words[:40], fill="black")
        drawn = ctx.workdir / "foo.png"
        picture.save(drawn)
        made = render_still(drawn, output_spec(ctx, self, "thumbnail").params, ctx.workdir, "thumbnail", ctx.settings)
        return StepResult(files=[made], metadata={"foo_text": words.strip()})


class WordCount:
    def definition(self, settings):
        return StepDef("foo-words", required=False)

    def run(self, ctx):
        return StepResult(metadata={"foo_words": len(ctx.source.read_bytes().split()) - 1})


@hookimpl
def kiln_media_kinds():
    return [FooKind()]


@hookimpl
def kiln_processing_steps(kind):
    return [WordCount()] if kind == "foo" else []


@hookimpl
def kiln_media_page_block(place, media, settings):
    if place == "details" and media.kind == "foo":
        return Markup('<p class="foo-words">Words: {}</p>').format(media.info.get("foo_words"))
    if place == "actions":
        return "<b>plain text from a plugin, escaped</b>"
    return None


@hookimpl
def kiln_media_published(media_id, kind, runtime):
    EVENTS.append(("published", media_id, kind))


@hookimpl
def kiln_media_deleted(media_id, kind, owner_id, runtime):
    EVENTS.append(("deleted", media_id, kind))
    raise RuntimeError("a plugin failing here must not break the delete")


@hookimpl
def kiln_register_commands(cli):
    @cli.command(name="foo-hello")
    def hello():
        """Say hello from the foo plugin."""
        click.echo("hello from foo")
'''

DISPLAY = """<figure class="foo">{% set thumb = media.rendition('thumbnail') %}
  {% if thumb %}<img class="foo-thumb" src="{{ media_src(thumb.key) }}" alt="">{% endif %}
  <pre>{{ media.info.get('foo_text', '') }}</pre></figure>
"""


def install_plugin(site: Path) -> Path:
    """The plugin as `pip install` would leave it: a package and a dist-info naming its entry point."""
    package = site / PLUGIN
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN_CODE)
    (package / "display.html").write_text(DISPLAY)
    info = site / "kiln_foo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kiln-foo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[kiln]\nfoo = {PLUGIN}\n")
    return site


@pytest.fixture
def foo_plugin(tmp_path: Path) -> Iterator[object]:
    """The plugin installed for this test only; the plugin manager is rebuilt before and after."""
    site = str(install_plugin(tmp_path / "site"))
    sys.path.insert(0, site)
    importlib.invalidate_caches()
    plugins.rebuild()
    try:
        yield importlib.import_module(PLUGIN)
    finally:
        sys.path.remove(site)
        sys.modules.pop(PLUGIN, None)
        importlib.invalidate_caches()
        plugins.rebuild()


def test_every_hook_has_a_section_in_docs_plugins_md() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    sections = set(re.findall(r"^### `?(kiln_\w+)", docs, re.M))
    hooks = {name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if getattr(fn, "kiln_spec", None) is not None}
    assert hooks, "hookspecs.py lists no hooks"
    assert not hooks - sections, f"hooks without a section in docs/plugins.md: {sorted(hooks - sections)}"
    assert not sections - hooks, f"docs/plugins.md documents hooks that do not exist: {sorted(sections - hooks)}"
    for name in hooks:
        assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring"


def _nginx() -> str:
    return (ROOT / "contrib" / "nginx" / "kiln.conf").read_text()


def test_nginx_serves_exactly_the_kinds_types() -> None:
    block = re.search(r"location \^~ /media/ \{.*?\btypes \{(.*?)\}", _nginx(), re.S)
    assert block, "no types { } block in the /media/ location"
    nginx: dict[str, str] = {}
    for statement in block.group(1).split(";"):
        words = statement.split()
        for ext in words[1:]:
            nginx["." + ext] = words[0]
    declared = {ext: content_type.split(";")[0] for ext, content_type in served_types().items()}
    wanted = "\n".join(f"{t} {e[1:]};" for e, t in sorted(declared.items(), key=lambda item: item[1]))
    assert nginx == declared, f"contrib/nginx/kiln.conf's types {{ }} should be:\n{wanted}"


def test_nginx_shows_inline_exactly_the_kinds_inline_types() -> None:
    line = re.search(r'"~\*\\\.\(\?:([a-z0-9|]+)\)\$"\s+"";', _nginx())
    assert line, "no inline line in the $kiln_media_disposition map"
    assert {"." + ext for ext in line.group(1).split("|")} == inline_types(), (
        "the map's inline line should list: " + "|".join(sorted(e[1:] for e in inline_types())))


def test_served_and_inline_types_come_from_the_kinds() -> None:
    for kind in kinds().values():
        assert kind.served_types.items() <= served_types().items()
        assert kind.inline_types <= inline_types()
    assert not {".html", ".svg", ".pdf", ".txt", ".json", ".js"} & inline_types()


def test_a_plugin_kind_and_hooks_work_end_to_end(foo_plugin, client, settings, rt, caplog) -> None:  # type: ignore[no-untyped-def]
    assert list(kinds()) == ["image", "video", "audio", "pdf", "model3d", "foo", "text"]
    register(client, settings)
    client.cookies.clear()  # the API answers a Bearer token, not a browser's session
    token = client.post("/api/v1/tokens", json={"username": "alice", "password": "correct horse"}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    note = b"KILNFOO\nHello from a plugin <script>x</script>\n"
    resp = client.post("/api/v1/media", headers=auth, files={"file": ("note.kilnfoo", note, "application/x-foo")})
    assert resp.status_code == 202, resp.text
    media_id = resp.json()["id"]
    item = client.get(f"/api/v1/media/{media_id}", headers=auth).json()
    assert (item["kind"], item["state"]) == ("foo", "processed"), item  # processed inline

    page = client.get(f"/u/alice/m/{media_id}")
    assert page.status_code == 200
    assert 'class="foo-thumb"' in page.text and "Hello from a plugin &lt;script&gt;" in page.text
    assert '<p class="foo-words">Words: 5</p>' in page.text  # the extra step ran; Markup kept
    assert "&lt;b&gt;plain text from a plugin, escaped&lt;/b&gt;" in page.text  # a str is escaped
    thumb = re.search(r'class="foo-thumb" src="([^"]+)"', page.text)
    assert thumb and client.get(thumb.group(1)).headers["content-type"].startswith("image/")
    assert [("published", media_id, "foo")] == foo_plugin.EVENTS  # type: ignore[attr-defined]

    deleted = client.delete(f"/api/v1/media/{media_id}", headers=auth)
    assert deleted.status_code in (200, 204), deleted.text  # the plugin raised; the delete stands
    assert foo_plugin.EVENTS[-1] == ("deleted", media_id, "foo")  # type: ignore[attr-defined]
    assert "plugin foo failed in kiln_media_deleted" in caplog.text
    assert client.get(f"/u/alice/m/{media_id}").status_code == 404


def test_a_plugin_kind_is_refused_by_name_like_any_kind(foo_plugin, client, settings) -> None:  # type: ignore[no-untyped-def]
    register(client, settings)
    files = [("file", ("note.png", b"KILNFOO\nnot a picture\n", "application/octet-stream"))]
    resp = client.post("/upload", data={"csrf_token": csrf(client, "/upload")}, files=files, follow_redirects=False)
    assert resp.status_code == 415 and "foo note" in resp.text.lower()


def test_without_the_plugin_the_kind_is_gone() -> None:
    assert "foo" not in kinds() and PLUGIN not in sys.modules


def test_a_plugin_adds_a_command_to_kiln(tmp_path: Path) -> None:
    site = install_plugin(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    script = textwrap.dedent("""
        from click.testing import CliRunner
        from kiln.cli import main
        print(CliRunner().invoke(main, ["foo-hello"]).output, end="")
        print(CliRunner().invoke(main, ["plugins"]).output, end="")
    """)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[0] == "hello from foo", out.stderr
    assert "foo (kiln-foo-plugin 0.1): kiln_media_deleted, kiln_media_kinds, kiln_media_page_block, " \
           "kiln_media_published, kiln_processing_steps, kiln_register_commands, kinds: foo" in lines
    assert "image (kiln 0.1.0): kiln_media_kinds, kinds: image" in lines


def test_a_kind_lacking_a_member_stops_kiln_with_its_name() -> None:
    class Half:
        name, label = "half", "Half a kind"

    class Broken:
        @hookimpl
        def kiln_media_kinds(self):  # type: ignore[no-untyped-def]
            return [Half()]

    plugins.rebuild()
    try:
        plugins.plugin_manager().register(Broken())
        with pytest.raises(RuntimeError, match=r"lacks formats, order, .*run_step"):
            kinds()
    finally:
        plugins.rebuild()
    assert "half" not in kinds()
