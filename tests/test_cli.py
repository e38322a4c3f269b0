"""The `kiln` command, run in-process with click's runner."""

from __future__ import annotations

import json

import pytest


@pytest.mark.db
def test_users_tokens_and_media_end_to_end(kiln, images):
    assert "Created user alice (admin)" in kiln("adduser", "alice", "--email", "a@example.com", "--password",
                                                "correct horse", "--admin").output
    kiln("adduser", "bob", "--email", "b@example.com", input="pass word 1\npass word 1\n")
    dup = kiln("adduser", "bob", "--email", "b2@example.com", "--password", "whatever 1", ok=False)
    assert dup.exit_code == 1 and "The username 'bob' is taken." in dup.output
    assert "bob is now an admin" in kiln("makeadmin", "bob").output
    assert "Password changed" in kiln("changepw", "bob", "--password", "new pass 123").output
    assert json.loads(kiln("token", "create", "alice", "--json").output)["token"].startswith("kiln_")

    out = kiln("addmedia", "alice", str(images["camera"]), str(images["plain"]), "--tags", "cli,test",
               "--title", "From the CLI", "--license", "https://creativecommons.org/licenses/by/4.0/",
               "--wait", "--json").stdout
    items = json.loads(out)
    assert [i["state"] for i in items] == ["processed", "processed"]
    first = items[0]
    assert first["owner"] == "alice" and first["kind"] == "image" and first["tags"] == ["cli", "test"]
    assert first["url"] == f"http://kiln.test/u/alice/m/{first['id']}"
    assert first["renditions"]["thumbnail"]["url"].startswith("http://kiln.test/media/entries/")
    assert set(first["renditions"]["medium"]) == {"url", "width", "height", "mime_type", "bytes"}

    listed = json.loads(kiln("media", "list", "--user", "alice", "--json").output)
    assert {i["id"] for i in listed} == {i["id"] for i in items}
    assert json.loads(kiln("media", "list", "--state", "failed", "--json").output) == []
    shown = json.loads(kiln("media", "show", str(first["id"]), "--json").output)
    assert shown["id"] == first["id"] and [s["name"] for s in shown["steps"]] == ["medium", "thumbnail", "metadata"]
    assert "processed" in kiln("media", "show", str(first["id"])).output
    kiln("media", "delete", str(first["id"]), "--yes")
    missing = kiln("media", "show", str(first["id"]), ok=False)
    assert missing.exit_code == 1 and "There is no media with that id." in missing.output


def test_addmedia_reports_refused_files_and_exits_non_zero(kiln, images):
    kiln("adduser", "alice", "--email", "a@example.com", "--password", "correct horse")
    result = kiln("addmedia", "alice", str(images["text"]), str(images["truncated"]), "--wait", "--json", ok=False)
    assert result.exit_code == 1
    assert "text file, which Kiln cannot publish" in result.stderr
    items = json.loads(result.stdout)
    assert len(items) == 1 and items[0]["state"] == "failed"
    assert items[0]["error"] == {"code": "corrupt", "message": items[0]["error"]["message"]}
    assert "damaged" in items[0]["error"]["message"]


def test_unknown_user_is_a_clear_error(kiln, images):
    result = kiln("addmedia", "ghost", str(images["plain"]), ok=False)
    assert result.exit_code == 1 and "There is no user named 'ghost'" in result.output
