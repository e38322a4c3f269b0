"""The hostile upload corpus (issue #6): several hundred files made here, from the kinds' own fixtures.

``make_corpus`` returns :class:`Case` objects: the bytes on disk, the name and the Content-Type they
are uploaded with, the family deciding the time limit, and whether the file may legitimately end
processed (a bit flip in pixel data is still a picture; a valid picture under a hostile *name* is
still a picture). Everything else must end refused at upload or failed with a reason.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures_images import LONG, _gif_screen, _ifd, _png, short

FAMILY_OF_SUFFIX = {
    **dict.fromkeys([".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".ts"], "video"),
    **dict.fromkeys([".mp3", ".flac", ".wav", ".aiff", ".opus", ".ogg", ".m4a"], "audio"),
}
VIDEO_EXTS = [".mp4", ".mkv", ".avi", ".mov", ".webm", ".mp3"]
SECRET_BYTES = b"HOSTILE-CORPUS-SECRET-b41e0c7d"  # planted outside every job; must never be stored


@dataclass(frozen=True)
class Case:
    label: str
    path: Path
    filename: str  # as uploaded (may be hostile)
    content_type: str = "application/octet-stream"
    group: str = "misc"
    family: str = "image"  # decides the time allowed: video/audio 120 s, the rest 30 s
    may_process: bool = False
    touches_secret: bool = False


class Builder:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.cases: list[Case] = []

    def add(self, label: str, data: bytes, filename: str, *, group: str, content_type: str | None = None,
            family: str | None = None, may_process: bool = False, touches_secret: bool = False) -> None:
        assert not any(c.label == label for c in self.cases), label
        path = self.dir / f"{len(self.cases):04d}.bin"  # on-disk names are tame; the upload name is not
        path.write_bytes(data)
        suffix = Path(filename.replace("\x00", "")).suffix.lower()
        self.cases.append(Case(label, path, filename, content_type or "application/octet-stream", group,
                               family or FAMILY_OF_SUFFIX.get(suffix, "image"), may_process, touches_secret))


def plant_secret(directory: Path) -> tuple[Path, Path]:
    """A private text file and a private MPEG-TS video outside every job, carrying SECRET_BYTES."""
    from tests.fixtures_video import H264, ffmpeg, lavfi

    folder = directory / "other-user"
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "diary.txt"
    text.write_bytes(SECRET_BYTES * 64)
    video = folder / "private.ts"
    ffmpeg(*lavfi(64, 48, seconds=0.5, audio=False), *H264, "-metadata", f"title={SECRET_BYTES.decode()}",
           "-f", "mpegts", str(video))
    with video.open("ab") as fh:  # trailing bytes a demuxer would copy into a remux
        fh.write(SECRET_BYTES * 4)
    return text, video


# Pixel and animation bombs ------------------------------------------------------------------------
def png_header_bomb(w: int, h: int) -> bytes:
    return _png(w, h, 2, 8, b"\x00" + b"\x80" * min(w * 3, 30000))


def png_full_bomb(w: int, h: int) -> bytes:
    """A complete 1-bit grey PNG of w x h black pixels (compresses ~1000:1)."""
    return _png(w, h, 0, 1, (b"\x00" * (1 + (w + 7) // 8)) * h)


def tiff_bomb(w: int, h: int) -> bytes:
    entries = {0x0100: (LONG, 1, struct.pack("<I", w)), 0x0101: (LONG, 1, struct.pack("<I", h)),
               0x0102: short(8), 0x0103: short(1), 0x0106: short(1), 0x0111: (LONG, 1, struct.pack("<I", 8)),
               0x0116: (LONG, 1, struct.pack("<I", h)), 0x0117: (LONG, 1, struct.pack("<I", 16))}
    body = b"\x00" * 16
    return b"II*\x00" + struct.pack("<I", 8 + len(body)) + body + _ifd(entries, 8 + len(body))


def webp_vp8x_bomb(w: int, h: int) -> bytes:
    """An extended WebP whose canvas (VP8X) declares w x h around a 1x1 lossless picture."""
    vp8x = b"\x00\x00\x00\x00" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    vp8l = b"\x2f" + struct.pack("<I", 0) + b"\x00" * 8
    body = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def jpeg_header_bomb(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    at = data.index(b"\xff\xc0") + 5  # SOF0: length(2) precision(1) then height, width
    data[at:at + 4] = struct.pack(">HH", h, w)
    return bytes(data)


def add_bombs(b: Builder) -> None:
    for side in (20_000, 30_001, 65_535, 200_000):
        b.add(f"png_{side}_square", png_header_bomb(side, side), f"bomb{side}.png", group="pixel bomb")
        b.add(f"tiff_{side}_square", tiff_bomb(side, side), f"bomb{side}.tiff", group="pixel bomb")
        b.add(f"webp_{side}_canvas", webp_vp8x_bomb(side, side), f"bomb{side}.webp", group="pixel bomb")
    for side in (20_000, 30_001, 65_535):
        b.add(f"gif_{side}_square", _gif_screen(side, side, 1, (side, side)), f"bomb{side}.gif", group="pixel bomb")
        b.add(f"jpeg_{side}_square", jpeg_header_bomb(side, side), f"bomb{side}.jpg", group="pixel bomb")
    b.add("png_200000_x_1", png_header_bomb(200_000, 1), "long.png", group="pixel bomb")
    b.add("png_1_x_200000", png_header_bomb(1, 200_000), "tall.png", group="pixel bomb")
    # Complete files just inside and just past the default limits: these get decoded, or refused.
    # 200 megapixels is the default limit: it may publish, within the time and memory allowed.
    b.add("png_full_20000x10000", png_full_bomb(20_000, 10_000), "full-200mp.png", group="pixel bomb",
          may_process=True)
    b.add("png_full_25000x10000", png_full_bomb(25_000, 10_000), "full-250mp.png", group="pixel bomb")
    b.add("gif_frames_2000_x900", _gif_screen(2000, 2000, 900), "frames.gif", group="animated bomb")
    b.add("gif_frames_5000_x200", _gif_screen(5000, 5000, 200, (5000, 5000)), "frames2.gif", group="animated bomb")
    b.add("gif_frames_1000_x20000", _gif_screen(1000, 1000, 20_000), "frames3.gif", group="animated bomb")


# Playlists, container tricks, durations -----------------------------------------------------------
def add_playlists(b: Builder, secret_text: Path, secret_video: Path, trap_url: str) -> None:
    targets = {
        "local_path": (str(secret_video), True),
        "file_url": (f"file://{secret_video}", True),
        "trap_http": (trap_url + "/seg.ts", False),
        "concat_proto": (f"concat:{secret_video}|{secret_text}", True),
    }
    for ext in VIDEO_EXTS:
        for name, (target, secret) in targets.items():
            text = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{target}\n#EXT-X-ENDLIST\n"
            b.add(f"hls_{name}{ext.replace('.', '_')}", text.encode(), f"clip{ext}", group="playlist",
                  touches_secret=secret)
        b.add(f"ffconcat{ext.replace('.', '_')}", f"ffconcat version 1.0\nfile '{secret_video}'\n".encode(),
              f"joined{ext}", group="playlist", touches_secret=True)
    b.add("hls_key_trap", (f"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"{trap_url}/key\"\n#EXTINF:1,\n"
                           f"{secret_video}\n#EXT-X-ENDLIST\n").encode(), "keyed.mp4", group="playlist",
          touches_secret=True)
    b.add("hls_map_trap", f"#EXTM3U\n#EXT-X-MAP:URI=\"{trap_url}/init.mp4\"\n#EXTINF:1,\nseg.m4s\n".encode(),
          "mapped.mkv", group="playlist")
    b.add("dash_mpd_trap", (f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">'
                            f'<Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>{trap_url}/v.mp4'
                            '</BaseURL></Representation></AdaptationSet></Period></MPD>').encode(),
          "manifest.mp4", group="playlist")
    b.add("sdp_rtp", b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\n"
          b"a=rtpmap:96 H264/90000\n", "stream.mp4", group="playlist")
    b.add("m3u_plain_trap", f"{trap_url}/a.mp3\n{secret_text}\n".encode(), "radio.mp3", group="playlist",
          touches_secret=True)


def patch_mp4_duration(data: bytes) -> bytes:
    """Every mvhd/mdhd (version 0) now says timescale 1, duration 2^32-1 s (136 years)."""
    out = bytearray(data)
    for box in (b"mvhd", b"mdhd"):
        at = out.find(box)
        while at != -1:
            if out[at + 4] == 0:
                struct.pack_into(">II", out, at + 16, 1, 0xFFFFFFFF)
            at = out.find(box, at + 4)
    return bytes(out)


def add_durations(b: Builder, video_dir: Path) -> None:
    from tests.fixtures_video import H264, ffmpeg, make_gap

    for hours in (5, 500):  # (the muxer's 32-bit sample durations wrap past ~1193 h)
        b.add(f"gap_{hours}_hours", make_gap(video_dir, f"gap{hours}.mp4", hours * 3600).read_bytes(),
              f"gap{hours}.mp4", group="duration")
    fast = video_dir / "fast.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x24:rate=25", "-frames:v", "50", "-vf", "setpts=N/TB/100000",
           "-fps_mode", "passthrough", "-video_track_timescale", "100000", *H264, str(fast))
    b.add("fps_100000", fast.read_bytes(), "fast.mp4", group="duration")
    plain = video_dir / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x24:rate=5", "-frames:v", "5", *H264, str(plain))
    b.add("mvhd_136_years", patch_mp4_duration(plain.read_bytes()), "years.mp4", group="duration")
    b.add("mvhd_136_years_mov", patch_mp4_duration(plain.read_bytes()), "years.mov", group="duration")


# SVG, polyglots, unaccepted formats -----------------------------------------------------------------
def add_svgs(b: Builder, secret_text: Path, trap_url: str) -> None:
    head = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">'
    bodies = {
        "script": ("<script>alert(document.cookie)</script>", False),
        "onload": ('<rect width="9" height="9" onload="alert(1)"/>', False),
        "image_trap": (f'<image href="{trap_url}/i.png" width="9" height="9"/>', False),
        "xlink_file": (f'<image xlink:href="file://{secret_text}" width="9" height="9"/>', True),
        "css_import": (f"<style>@import url({trap_url}/s.css);</style>", False),
        "foreign_iframe": (f'<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="{trap_url}/f"/>'
                           "</foreignObject>", False),
        "use_external": (f'<use href="{trap_url}/u.svg#a"/>', False),
    }
    for name, (body, secret) in bodies.items():
        data = (head + body + "</svg>").encode()
        b.add(f"svg_{name}", data, f"{name}.svg", content_type="image/svg+xml", group="svg", touches_secret=secret)
        b.add(f"svg_{name}_as_png", data, f"{name}.png", content_type="image/png", group="svg", touches_secret=secret)
    xxe = (f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY s SYSTEM "file://{secret_text}">]>' + head
           + "<text>&s;</text></svg>").encode()
    b.add("svg_xxe", xxe, "xxe.svg", content_type="image/svg+xml", group="svg", touches_secret=True)
    b.add("svg_xxe_as_txt", xxe, "xxe.txt", content_type="text/plain", group="svg", touches_secret=True)
    b.add("svgz_script", zlib.compress((head + "<script>alert(1)</script></svg>").encode()), "logo.svgz",
          group="svg")


HTML = b"<html><body><script>alert(document.domain)</script></body></html>"


def add_polyglots(b: Builder, good: dict[str, Path]) -> None:
    png = good["png"].read_bytes()
    jpeg = good["jpeg"].read_bytes()
    pdf = good["pdf"].read_bytes()
    text_chunk = b"tEXt" + b"comment\x00" + HTML
    with_text = png[:33] + struct.pack(">I", len(text_chunk) - 4) + text_chunk + struct.pack(
        ">I", zlib.crc32(text_chunk)) + png[33:]
    variants = {
        "png_then_html": (png + HTML, "x.png"), "html_then_png": (HTML + png, "x.png"),
        "png_html_in_text_chunk": (with_text, "x.png"), "png_then_html_as_html": (png + HTML, "x.html"),
        "jpeg_then_html": (jpeg + HTML, "x.jpg"), "html_then_jpeg": (HTML + jpeg, "x.jpg"),
        "jpeg_html_in_comment": (jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(HTML) + 2) + HTML + jpeg[2:], "x.jpg"),
        "pdf_then_html": (pdf + HTML, "x.pdf"), "html_then_pdf": (HTML + pdf, "x.pdf"),
        "gif_js": (b"GIF89a/*\x00\x00\x00\x00\x00*/=alert(1);//" + HTML, "x.gif"),
        "png_then_zip": (png + zip_bytes(), "x.png"), "jpeg_then_zip": (jpeg + zip_bytes(), "x.jpg"),
    }
    for name, (data, filename) in variants.items():
        # Trailing bytes after a valid image are ignored by decoders: such a file may process, and its
        # renditions (re-encoded) must then be valid and free of the HTML.
        tail_only = name in ("png_then_html", "png_html_in_text_chunk", "jpeg_then_html", "jpeg_html_in_comment",
                             "png_then_zip", "jpeg_then_zip", "pdf_then_html")
        b.add(f"polyglot_{name}", data, filename, group="polyglot", may_process=tail_only)


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.php", "<?php system($_GET['c']); ?>")
    return buf.getvalue()


ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 62, 1) + b"\x00" * 200
PE = b"MZ" + b"\x90" * 58 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200
UNACCEPTED = {
    "zip": (zip_bytes(), ".zip", "application/zip"), "elf": (ELF, "", "application/octet-stream"),
    "exe": (PE, ".exe", "application/x-msdownload"), "php": (b"<?php system($_GET['c']); ?>\n", ".php", "text/x-php"),
    "html": (HTML, ".html", "text/html"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', ".svg", "image/svg+xml"),
    "gzip": (zlib.compress(b"x" * 100), ".gz", "application/gzip"),
    "tar": (b"a.txt".ljust(100, b"\x00") + b"0000644\x00".ljust(157, b"\x00") + b"ustar\x0000", ".tar",
            "application/x-tar"),
    "7z": (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40, ".7z", "application/x-7z-compressed"),
    "rar": (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 40, ".rar", "application/vnd.rar"),
    "java_class": (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 40, ".class", "application/java-vm"),
    "jar": (zip_bytes(), ".jar", "application/java-archive"),
    "shell": (b"#!/bin/sh\nid > /tmp/pwned\n", ".sh", "text/x-sh"),
    "python": (b"import os\nos.system('id')\n", ".py", "text/x-python"),
    "swf": (b"FWS\x0a" + b"\x00" * 40, ".swf", "application/x-shockwave-flash"),
    "xml_xslt": (b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><a/>', ".xml", "text/xml"),
    "docx": (zip_bytes(), ".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "ico_exe": (b"\x00\x00\x01\x00" + PE, ".ico", "image/x-icon"),
}


def add_unaccepted(b: Builder) -> None:
    for name, (data, ext, ctype) in UNACCEPTED.items():
        b.add(f"unaccepted_{name}", data, f"file{ext}", content_type=ctype, group="unaccepted")
        b.add(f"unaccepted_{name}_as_jpg", data, "photo.jpg", content_type="image/jpeg", group="unaccepted")
    for name in ("php", "html", "elf", "zip"):
        b.add(f"unaccepted_{name}_as_mp4", UNACCEPTED[name][0], "clip.mp4", content_type="video/mp4",
              group="unaccepted")


# Type mismatches and hostile names ---------------------------------------------------------------
def add_mismatches(b: Builder, good: dict[str, Path]) -> None:
    cross = [("jpeg", "x.mp4"), ("png", "x.mp3"), ("mp4", "x.jpg"), ("mp4", "x.pdf"), ("pdf", "x.png"),
             ("mp3", "x.gif"), ("stl", "x.jpg"), ("pdf", "x.mp4"), ("png", "x.stl"), ("mp3", "x.pdf")]
    for source, filename in cross:
        b.add(f"mismatch_{source}_as_{Path(filename).suffix[1:]}", good[source].read_bytes(), filename,
              group="type mismatch")
    # Extension and content agree, the declared type lies: may process, but never as the declared type.
    for source, filename, ctype in [("png", "x.png", "text/html"), ("jpeg", "x.jpg", "image/svg+xml"),
                                    ("pdf", "x.pdf", "text/html"), ("mp4", "x.mp4", "application/x-php")]:
        b.add(f"declared_{source}_as_{ctype.split('/')[1]}", good[source].read_bytes(), filename,
              content_type=ctype, group="declared type", may_process=True,
              family="video" if source == "mp4" else "image")


HOSTILE_NAMES = {
    "dotdot": "../../../etc/cron.d/x.png", "abs": "/etc/passwd.png", "backslash": "..\\..\\win.ini.png",
    "nul": "evil.php\x00.png", "long": "a" * 300 + ".png", "rtl": "photo\u202egnp.exe.png",
    "php_jpg": "shell.php.jpg", "dotfile": ".htaccess.png", "newline": "a\r\nSet-Cookie: x=1.png",
    "quote_html": "\"><img src=x onerror=alert(1)>.png", "unicode_dots": "\u2025\u2215\u2025\u2215x.png",
}


def add_names(b: Builder, good: dict[str, Path]) -> None:
    png = good["png"].read_bytes()
    for name, filename in HOSTILE_NAMES.items():
        # A genuine picture under a hostile name may publish, under a cleaned name and a safe key.
        b.add(f"name_{name}_picture", png, filename.replace(".jpg", ".png"), group="hostile name", may_process=True)
        b.add(f"name_{name}_php", b"<?php system($_GET['c']); ?>\n", filename, group="hostile name")


# Truncations and bit flips of every good sample ----------------------------------------------------
def flipped(data: bytes, seed: int, count: int = 8) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    start = min(16, len(out) - 1)  # keep the signature, so the file still claims its format
    for _ in range(count):
        at = rng.randrange(start, len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def add_damaged(b: Builder, samples: dict[str, dict[str, Path]], seeds: dict[str, int]) -> None:
    for kind, files in samples.items():
        for label, path in files.items():
            data = path.read_bytes()
            family = kind if kind in ("video", "audio") else "image"
            rng = random.Random(f"{kind}/{label}")
            keep = rng.choice([0.1, 0.5, 0.8])
            # A cut text file is still text: it may publish. So may a cut TIFF (libvips reads the
            # strips that are there; TIFF has no end marker to miss) and a cut AVI (ffmpeg plays the
            # frames that are there, and the transcode's length check allows what it could read).
            # Every other cut file must fail.
            tolerant = kind == "text" or path.suffix.lower() in (".tif", ".tiff", ".avi")
            b.add(f"truncated_{kind}_{label}", data[: max(1, int(len(data) * keep))], path.name, group="truncated",
                  family=family, may_process=tolerant)
            for seed in range(1, seeds.get(kind, 2) + 1):
                b.add(f"flipped_{kind}_{label}_s{seed}", flipped(data, seed), path.name, group="bit flip",
                      family=family, may_process=True)


def make_corpus(directory: Path, samples: dict[str, dict[str, Path]], hostile: dict[str, dict[str, Path]],
                secret_text: Path, secret_video: Path, trap_url: str, flips: int = 2) -> list[Case]:
    """Every hostile case; ``samples``/``hostile`` are the kinds' own fixtures (make_all / make_hostile).
    ``flips``: how many bit-flipped copies of each image, PDF and text sample (the slowest group)."""
    directory.mkdir(parents=True, exist_ok=True)
    b = Builder(directory)
    good = {"png": samples["image"]["flat_png"], "jpeg": samples["image"]["plain"],
            "pdf": samples["pdf"]["one_page"], "mp4": samples["video"]["landscape_mp4"],
            "mp3": samples["audio"]["mp3"], "stl": samples["model3d"]["stl"]}
    for kind, files in hostile.items():  # the kinds' own hostile files, reused
        for label, path in files.items():
            b.add(f"fixture_{kind}_{label}", path.read_bytes(), path.name, group="kind fixture",
                  family=kind if kind in ("video", "audio") else "image",
                  touches_secret=label in ("hls_playlist_named_mp4", "hls_playlist_mp3"))
    add_bombs(b)
    add_playlists(b, secret_text, secret_video, trap_url)
    video_dir = directory / "video-work"
    video_dir.mkdir(exist_ok=True)
    add_durations(b, video_dir)
    add_svgs(b, secret_text, trap_url)
    add_polyglots(b, good)
    add_unaccepted(b)
    add_mismatches(b, good)
    add_names(b, good)
    add_damaged(b, samples, {"image": flips, "pdf": flips, "text": flips, "model3d": 1, "video": 1, "audio": 1})
    return b.cases
