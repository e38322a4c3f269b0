"""Kiln's settings: the one place that reads environment variables and ``kiln.toml``.

Precedence, highest first: keyword arguments (tests, CLI flags), environment variables
(``KILN_...``; nested with ``__``, e.g. ``KILN_IMAGE__THUMBNAIL_SIZE=240``), then
``DATA/kiln.toml``, then the defaults below.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_NAME = "kiln.toml"


class ImageSettings(BaseModel):
    """Rendition sizes and encodings for still images."""

    thumbnail_size: int = Field(180, ge=16, le=2048, description="Thumbnails fit in a square of this side.")
    medium_size: int = Field(1280, ge=64, le=8192, description="The page image fits in a square of this side.")
    jpeg_quality: int = Field(82, ge=30, le=100)
    webp_quality: int = Field(80, ge=30, le=100)
    max_pixels: int = Field(200_000_000, description="Images declaring more pixels are refused unread.")
    max_side: int = Field(30_000, description="Images declaring a longer side are refused unread.")
    animation_size: int = Field(720, ge=16, le=4096, description="Animated GIF/WebP play on their page as an "
                                "animated WebP fitting a square of this side.")
    max_frames: int = Field(1000, ge=1, description="Animations declaring more frames are refused unread.")
    max_animation_pixels: int = Field(1_000_000_000, description="Animations whose frames hold more pixels "
                                      "together (frames x width x height) are refused unread.")
    raw_memory_mb: int = Field(2048, ge=0, description="Address-space cap of the LibRaw process that decodes a "
                               "camera RAW without a big enough preview; 0 = none.")
    raw_seconds: float = Field(60.0, gt=0, description="Time that LibRaw process may take.")


class ToolSettings(BaseModel):
    """External programs. Empty means the copy installed with Kiln's own Python packages."""

    ffmpeg: str = Field("", description="Path to an ffmpeg binary; empty uses the one bundled with imageio-ffmpeg.")


class VideoSettings(BaseModel):
    """The web transcode ladder and the limits checked before decoding a video."""

    heights: list[int] = Field(default_factory=lambda: [720, 360], description="Renditions made, tallest first; "
                               "never taller than the source.")
    crf: int = Field(23, ge=0, le=51, description="x264 constant rate factor (lower is better and bigger).")
    preset: str = Field("veryfast", description="x264 preset.")
    audio_bitrate_kbps: int = Field(128, ge=32, le=512)
    av1: bool = Field(False, description="Also make an AV1 (SVT-AV1) rendition at the largest height.")
    max_duration_seconds: float = Field(4 * 3600, gt=0, description="Longer videos are refused unread.")
    max_fps: float = Field(240, gt=0)
    max_pixels: int = Field(8192 * 4320, description="Frames declaring more pixels are refused unread.")
    memory_mb: int = Field(2048, ge=0, description="Address space allowed to each ffmpeg run (0 = no cap).")
    av1_preset: int = Field(8, ge=0, le=13, description="SVT-AV1 preset (higher is faster).")
    av1_crf: int = Field(35, ge=1, le=63, description="SVT-AV1 constant rate factor.")


class AudioSettings(BaseModel):
    """Audio renditions and limits."""

    bitrate_kbps: int = Field(128, ge=32, le=512)
    max_duration_seconds: float = Field(12 * 3600, gt=0, description="Longer audio is refused unread.")
    spectrogram_width: int = Field(1024, ge=64, le=8192)
    waveform_peaks: int = Field(1000, ge=50, le=20_000, description="Peaks stored for the player's waveform.")


class DocumentSettings(BaseModel):
    """PDF documents."""

    max_pages: int = Field(5000, ge=1, description="PDFs declaring more pages are refused.")
    max_page_inches: float = Field(200.0, gt=0, description="PDFs with a page side longer than this are refused "
                                   "(200 inches is the PDF 1.7 limit).")
    pages_shown: int = Field(50, ge=1, le=1000, description="First pages drawn as pictures for the page viewer.")
    page_width: int = Field(1200, ge=200, le=4000, description="Page pictures fit this width (and twice its height).")
    memory_mb: int = Field(1024, ge=0, description="Address-space cap of the process that reads a PDF; 0 = none.")
    probe_seconds: float = Field(20.0, gt=0, description="Time the header read at upload may take.")
    seconds_per_page: float = Field(10.0, gt=0, description="Time allowed per page drawn.")


class TextSettings(BaseModel):
    """Text art (.txt, .nfo, .asc)."""

    max_bytes: int = Field(1024 * 1024, ge=1, description="Larger text files are refused.")
    max_columns: int = Field(400, ge=10)
    max_lines: int = Field(5000, ge=1)
    tab_size: int = Field(8, ge=1, le=16, description="Columns between tab stops.")
    page_text_bytes: int = Field(64 * 1024, ge=1024, le=1024**2, description="Text shown on the media page; the "
                                 "whole text is a rendition linked from there.")
    font_size: int = Field(16, ge=6, le=64, description="Pixel size of the font text pictures are drawn in.")
    picture_lines: int = Field(60, ge=5, le=1000, description="Lines drawn in the medium picture.")


class ModelSettings(BaseModel):
    """3D models (STL, OBJ, PLY, glTF/GLB)."""

    max_triangles: int = Field(5_000_000, ge=1, description="Models with more triangles are refused.")
    max_bytes: int = Field(512 * 1024**2, ge=1)
    time_limit_seconds: float = Field(300, gt=0, description="Loading or drawing one model is stopped after this.")
    memory_mb: int = Field(4096, ge=256, description="Address-space cap of the process that loads a model.")
    supersample: int = Field(2, ge=1, le=4, description="Pictures are drawn this many times larger, then "
                             "shrunk (smoother edges; cost grows with its square).")


class RetryPolicy(BaseModel):
    """Retries and limits; set site-wide under [processing], overridden per kind."""

    step_time_limit: int = Field(600, ge=1, description="Seconds a step may run before it is killed.")
    max_attempts: int = Field(5, ge=1)
    backoff_base: float = Field(10.0, ge=0.0, description="Seconds before the first retry.")
    backoff_cap: float = Field(86_400.0, ge=0.0, description="Longest wait between retries (1 day).")


class StepPolicy(RetryPolicy):
    """The retry policy of processing steps, and how an item's steps are claimed and recorded."""

    batch_steps: bool = Field(True, description="Claim all of an item's due steps at once and record their "
                              "outcomes in one transaction (steps of milliseconds); false: step by step, "
                              "each committed as it ends (steps of minutes: video, audio).")


class OutboxSettings(RetryPolicy):
    """Side effects run after commit (mail): retries, and how long one may run before it is taken back."""

    step_time_limit: int = Field(120, ge=1, description="Seconds one effect (a mail) may run before the "
                                 "sweeper takes it back and retries it.")
    max_attempts: int = Field(10, ge=1)
    backoff_base: float = Field(30.0, ge=0.0, description="Seconds before the first retry.")
    backoff_cap: float = Field(3600.0, ge=0.0, description="Longest wait between retries (1 hour).")


class KindPolicy(BaseModel):
    """Per-kind overrides of the retry policy, e.g. [processing.kinds.video] step_time_limit = 3600."""

    step_time_limit: int | None = Field(None, ge=1)
    max_attempts: int | None = Field(None, ge=1)
    backoff_base: float | None = Field(None, ge=0.0)
    backoff_cap: float | None = Field(None, ge=0.0)
    batch_steps: bool | None = None


class ProcessingSettings(StepPolicy):
    """How background processing runs, retries and recovers."""

    concurrency: int = Field(0, ge=0, description="Worker processes for `kiln serve`; 0 means one per core.")
    lease_seconds: int = Field(60, ge=2, description="A running step renews its lease this often (x1/3).")
    sweep_interval: float = Field(15.0, ge=0.2, description="Seconds between sweeper passes.")
    memory_limit_mb: int = Field(3072, ge=0, description="Address space per worker process; 0 = no limit.")
    reprocess_concurrency: int = Field(1, ge=1, description="Items reprocessed at once, so uploads stay fast.")
    kinds: dict[str, KindPolicy] = Field(default_factory=dict)

    def policy(self, kind: str) -> StepPolicy:
        """The site-wide policy, then Kiln's defaults for the kind, then the site's [processing.kinds.KIND]."""
        base = {name: getattr(self, name) for name in StepPolicy.model_fields}
        for override in (KIND_DEFAULTS.get(kind), self.kinds.get(kind)):
            if override is not None:
                base.update({k: v for k, v in override.model_dump().items() if v is not None})
        return StepPolicy(**base)


# A transcode step runs as long as the media plays, or longer: the limits follow the kinds' longest
# accepted duration (video.max_duration_seconds is 4 hours, audio's 12).
KIND_DEFAULTS = {
    "video": KindPolicy(step_time_limit=4 * 3600, batch_steps=False),
    "audio": KindPolicy(step_time_limit=2 * 3600, batch_steps=False),
}


class MailSettings(BaseModel):
    """Outgoing mail. With no SMTP host, mail is printed and written under DATA/mail/."""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_timeout: float = Field(10.0, gt=0, le=300, description="Seconds to wait for the SMTP server at each "
                                "step (connect, each reply); a mail that times out is retried later.")
    sender: str = "kiln@localhost"


class BackendSettings(BaseModel):
    """One place media can be stored. Each store (queue, originals, public) gets its own folder,
    Swift container or S3 bucket inside it, named ``<prefix>-<store>``."""

    type: Literal["local", "swift", "s3"] = "local"
    path: Path | None = Field(None, description="local: the folder (default DATA/media).")
    prefix: str = Field("kiln", pattern=r"^[a-z0-9][a-z0-9-]{1,40}$", description="swift/s3: container/bucket prefix.")
    auth_url: str | None = Field(None, description="swift: e.g. https://swift.example.org/auth/v1.0")
    user: str | None = None
    key: str | None = None
    auth_version: str = "1"
    endpoint_url: str | None = Field(None, description="s3: e.g. https://s3.eu-west-1.amazonaws.com")
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    public_url: str | None = Field(None, description="Base URL the public store is reachable at (a CDN).")
    url_expires: int = Field(3600, ge=60, le=604_800, description="Lifetime of signed URLs, in seconds.")


class StorageSettings(BaseModel):
    """Named backends, and which backend holds each store."""

    backends: dict[str, BackendSettings] = Field(default_factory=lambda: {"local": BackendSettings()})
    queue: str = "local"
    originals: str = "local"
    public: str = "local"
    reserve_mib: int = Field(
        512, ge=0, description="Uploads are refused (507) when they would leave less than this much free "
                               "disk space where uploads are received (the workbench, and a local queue store).")


class SecuritySettings(BaseModel):
    """Throttles on logins, sign-ups and reset mails, who may say which address a request came from, and
    what a password hash costs."""

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For/-Proto headers are believed.")
    hsts_seconds: int = Field(31_536_000, ge=0, description="Strict-Transport-Security max-age over TLS; 0: off.")
    login_failures_per_account: int = Field(5, ge=1, description="Failed logins on one name before a pause.")
    login_failures_per_ip: int = Field(30, ge=1, description="Failed logins from one address before a pause.")
    login_window_seconds: int = Field(900, ge=1, description="Failures older than this are forgotten.")
    lockout_seconds: int = Field(60, ge=1, description="First pause; each further one doubles.")
    max_lockout_seconds: int = Field(3600, ge=1)
    registrations_per_ip_per_hour: int = Field(20, ge=1)
    reset_mails_per_account_per_hour: int = Field(3, ge=1)
    reset_mails_per_ip_per_hour: int = Field(10, ge=1)
    comments_per_user_per_hour: int = Field(
        30, ge=1, description="Comments (and replies) one person may post in an hour before a pause (429); "
                              "editing and deleting do not count.")
    password_time_cost: int = Field(3, ge=1, description="Argon2id passes per password hash.")
    password_memory_kib: int = Field(65_536, ge=64, description="Argon2id memory per password hash, in KiB. "
                                     "Lower costs make a stolen hash cheaper to guess; a stored hash made "
                                     "with other costs is re-made at its owner's next login.")


class WebSettings(BaseModel):
    """The web processes: the cache of pages that are the same for every anonymous visitor."""

    page_cache_entries: int = Field(2000, ge=0, description="Pages kept per web process; 0 turns the cache off.")
    page_cache_mib: int = Field(64, ge=1, description="Memory the page cache may use per web process.")
    page_cache_seconds: float = Field(
        300, gt=0, description="Longest a cached page is served even if nothing changed (keep it under a "
                               "storage backend's url_expires when pages link signed URLs).")


class ModerationSettings(BaseModel):
    """Reports and what the moderators remove (docs/moderation.md)."""

    removal_grace_days: int = Field(
        30, ge=0, le=3650, description="Days a removed media item or collection is kept (hidden from everyone but "
                                       "admins, who may restore it) before its files and row are deleted for good.")


class SearchSettings(BaseModel):
    """Full-text search (docs/search.md)."""

    language: str = Field(
        "english", description="PostgreSQL: the language whose stemmer the index uses (any of PostgreSQL's "
                               "Snowball languages: english, german, french, spanish, ...). Run `kiln search "
                               "reindex` after changing it. SQLite's index always stems English.")

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        from kiln.search.backends import LANGUAGES

        if value not in LANGUAGES:
            raise ValueError(f"search.language must be one of {', '.join(LANGUAGES)}")
        return value


class FederationSettings(BaseModel):
    """ActivityPub (docs/federation.md): being followable from other servers, and talking to them."""

    enabled: bool = Field(True, description="Serve WebFinger, NodeInfo, actors and inboxes; off: all of them 404 "
                                            "and nothing is delivered.")
    allow_private_addresses: bool = Field(
        False, description="Let Kiln fetch from and deliver to loopback and private network addresses (tests, "
                           "a private network of servers). Off, such addresses are refused before connecting.")
    connect_timeout: float = Field(5.0, gt=0, le=60, description="Seconds to wait for a remote server to accept "
                                                                 "the connection.")
    read_timeout: float = Field(10.0, gt=0, le=120, description="Seconds to wait for each read of its answer.")
    max_document_bytes: int = Field(1024**2, ge=1024, le=16 * 1024**2, description="Larger remote documents "
                                    "(actors, keys) are refused.")
    max_inbox_bytes: int = Field(256 * 1024, ge=1024, le=4 * 1024**2, description="Larger activities posted to "
                                 "an inbox are refused (413).")
    signature_max_age_seconds: int = Field(12 * 3600, ge=60, description="Signed requests dated earlier than "
                                           "this are refused.")
    signature_max_future_seconds: int = Field(300, ge=0, description="Signed requests dated further ahead than "
                                              "this (a remote clock running fast) are refused.")
    keep_activities_days: int = Field(30, ge=1, description="Activities received are kept this long once "
                                      "processed (a Follow as long as that follow lasts, for an Undo naming it).")
    delivery_max_attempts: int = Field(30, ge=1, description="Tries of one delivery before it is marked failed "
                                       "(with the backoff below, about three weeks).")
    delivery_backoff_base: float = Field(60.0, ge=0.0, description="Seconds before a delivery's first retry; each "
                                         "retry waits twice as long as the one before.")
    delivery_backoff_cap: float = Field(86_400.0, ge=0.0, description="Longest wait between two tries of a "
                                        "delivery (1 day).")
    delivery_time_limit: int = Field(120, ge=10, description="Seconds one delivery may take before it is taken "
                                     "back and retried.")
    dead_host_failures: int = Field(8, ge=1, description="Failures in a row, with no success, after which a "
                                    "server counts as dead: its deliveries wait instead of being tried one by one.")
    dead_host_after_seconds: int = Field(12 * 3600, ge=0, description="...and for at least this long since the "
                                         "first of those failures.")
    dead_host_probe_seconds: int = Field(6 * 3600, ge=60, description="How often one delivery to a dead server is "
                                         "tried; when it gets through, the server is alive again and every waiting "
                                         "delivery goes at once.")
    max_attachment_bytes: int = Field(100 * 1024**2, ge=1024, description="Largest file of a followed account's "
                                      "post that Kiln copies into its own storage (larger ones are linked).")
    attachment_time_limit: float = Field(300.0, gt=0, le=3600, description="Seconds the copy of one such file "
                                         "may take, all told.")


DEFAULT_URL = "http://127.0.0.1:6543"


class Settings(BaseSettings):
    """Every setting Kiln has. Build one with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="KILN_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("kiln-data"), alias="KILN_DATA")
    database_url: str | None = None
    broker_url: str | None = Field(None, description="Celery broker; empty means the embedded queue.")
    secret_key: str = ""
    site_name: str = "Kiln"
    default_locale: str = Field("en", description="The language for visitors whose browser asks for none "
                                                  "Kiln speaks (en, de, es, fr, ar, ...).")
    base_url: str | None = Field(
        None, description="The address people reach Kiln at, for links in mail, feeds, the API and the CLI. "
                          "Unset: the address each request came to, and for mail and CLI output the "
                          "address `kiln serve` listens on.")
    static_base_url: str | None = Field(None, description="Serve CSS/JS from another host (direct_remote_path).")
    registration: Literal["open", "approval", "invite", "closed"] = Field(
        "open", description="Who may sign up: anyone (open), anyone whose request a moderator approves "
                            "(approval), people with an invite link (invite), nobody (closed).")
    registration_open: bool | None = Field(
        None, description="The old switch, still read: true means registration = \"open\", false \"closed\" "
                          "(only when `registration` itself is not set).")
    registration_question: str = Field(
        "", max_length=500, description="In approval mode, the question the sign-up form asks; the answer goes "
                                        "to the moderators with the request.")
    invites_by_users: bool = Field(False, description="Let every confirmed account make invite links, not only admins.")
    blocked_email_domains: list[str] = Field(
        default_factory=list, description="Sign-ups with an address at these domains (or their subdomains) are "
                                          "refused.")
    hold_first_comments: int = Field(
        0, ge=0, description="New accounts' first comments wait for a moderator's approval: comments of accounts "
                             "with fewer than this many approved comments are held. 0: off.")
    require_email_verification: bool = True
    max_upload_bytes: int = Field(2 * 1024**3, ge=1)
    per_page: int = Field(30, ge=1, le=200)
    mail: MailSettings = MailSettings()
    image: ImageSettings = ImageSettings()
    video: VideoSettings = VideoSettings()
    audio: AudioSettings = AudioSettings()
    document: DocumentSettings = DocumentSettings()
    text: TextSettings = TextSettings()
    model3d: ModelSettings = ModelSettings()
    tools: ToolSettings = ToolSettings()
    processing: ProcessingSettings = ProcessingSettings()
    outbox: OutboxSettings = OutboxSettings()
    storage: StorageSettings = StorageSettings()
    security: SecuritySettings = SecuritySettings()
    web: WebSettings = WebSettings()
    moderation: ModerationSettings = ModerationSettings()
    search: SearchSettings = SearchSettings()
    federation: FederationSettings = FederationSettings()
    username_hold_days: int = Field(30, ge=0, le=3650, description="Days the username of a deleted account is "
                                    "held back before anyone can register it again (0: free at once).")

    @model_validator(mode="after")
    def _registration_from_old_switch(self) -> Settings:
        if self.registration_open is not None and "registration" not in self.model_fields_set:
            self.registration = "open" if self.registration_open else "closed"
        return self

    @field_validator("blocked_email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@").strip(".") for d in value if d.strip().strip(".@")]

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, init_settings, env_settings))

    # Derived locations -------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kiln.db'}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def workbench_dir(self) -> Path:
        return self.data_dir / "workbench"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"

    @property
    def log_file(self) -> Path:
        """Where `kiln serve` writes its processes' logs (unless --verbose)."""
        return self.data_dir / "kiln.log"

    @property
    def serve_url_file(self) -> Path:
        """Where `kiln serve` records the address it listens on, for links made outside a request."""
        return self.data_dir / "serve-url"

    def link_base(self) -> str:
        """The base of absolute links made outside a request (mail, CLI output): ``base_url``, else
        the address the last `kiln serve` on this data directory listened on, else the default."""
        if self.base_url:
            return self.base_url.rstrip("/")
        try:
            recorded = self.serve_url_file.read_text().strip()
        except OSError:
            recorded = ""
        return recorded.rstrip("/") or DEFAULT_URL

    @property
    def embedded_queue(self) -> bool:
        return not self.broker_url

    @property
    def worker_concurrency(self) -> int:
        return self.processing.concurrency or max(1, os.cpu_count() or 1)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads DATA/kiln.toml, where DATA comes from the higher-priority sources or the default."""

    def __init__(self, settings_cls: type[BaseSettings], *higher: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._higher = higher

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data_dir: Any = None
        for source in self._higher:
            values = source()
            data_dir = values.get("data_dir") or values.get("KILN_DATA") or data_dir
            if data_dir:
                break
        path = Path(data_dir or "kiln-data").expanduser() / CONFIG_NAME
        if not path.is_file():
            return {}
        with path.open("rb") as fh:
            return tomllib.load(fh)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, creating the data directory and a secret key on first use."""
    if "data_dir" in overrides:
        overrides["KILN_DATA"] = overrides.pop("data_dir")
    settings = Settings(**overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        settings.secret_key = _stored_secret(settings.data_dir)
    return settings


def _stored_secret(data_dir: Path) -> str:
    """The site's secret lives in DATA/secret.key (mode 600), made once."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
