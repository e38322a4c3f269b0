"""A small software renderer: a triangle mesh seen from a 3/4 view, flat Lambert shading, z-buffer.

Why not OpenGL: pyrender and moderngl need the system's GL libraries (or EGL/OSMesa), which a
pip-only install cannot promise, and a display server is out of the question. Pictures of 1-2
megapixels need no GPU: triangles are grouped by the size of their screen bounding box, and each
group is rasterised at once with numpy (every candidate pixel of every triangle tested against its
edge functions), so the cost grows with covered pixels, not with Python loops over triangles.

Coordinates are Y-up (glTF's convention; Z-up formats are turned upright before they get here).
The camera looks from the front right, above the model, orthographically.
"""

from __future__ import annotations

import math

import numpy as np

BACKGROUND = (236, 238, 241)
CLAY = np.array([196, 186, 170], dtype=np.float32)  # the colour of a model that brings none
AZIMUTH, ELEVATION = math.radians(35), math.radians(25)
LIGHT = np.array([-0.45, 0.65, 0.62], dtype=np.float32)
AMBIENT = 0.38
MARGIN = 0.06  # of the long side, around the model
BATCH = 1 << 18  # pixels rasterised at once: small enough to stay in cache (measured fastest)


def view_axes() -> np.ndarray:
    """Rows: the screen's right, up, and towards-the-camera directions in model space."""
    towards = np.array([math.sin(AZIMUTH) * math.cos(ELEVATION), math.sin(ELEVATION),
                        math.cos(AZIMUTH) * math.cos(ELEVATION)])
    right = np.cross([0.0, 1.0, 0.0], towards)
    right /= np.linalg.norm(right)
    up = np.cross(towards, right)
    return np.stack([right, up, towards])


def render(vertices: np.ndarray, faces: np.ndarray, face_colors: np.ndarray | None, size: int,
           supersample: int = 2, closed: np.ndarray | None = None) -> np.ndarray:
    """An RGB picture (H, W, 3 uint8) whose long side is ``size``, of the mesh framed with a margin.

    ``face_colors`` (F, 3) uint8, or None for a uniform clay colour. ``closed`` (F,) bool marks
    faces of closed surfaces wound outwards: those facing away are never seen, so they are not
    drawn (about half the work for solid models).
    """
    view = (np.asarray(vertices, dtype=np.float64) @ view_axes().T).astype(np.float32)
    lo, hi = view.min(axis=0), view.max(axis=0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    if not math.isfinite(extent) or extent <= 0:
        raise ValueError("the model has no size")
    big = size * supersample
    scale = big * (1 - 2 * MARGIN) / extent
    pad = big * MARGIN
    width = max(supersample, int(math.ceil((hi[0] - lo[0]) * scale + 2 * pad)))
    height = max(supersample, int(math.ceil((hi[1] - lo[1]) * scale + 2 * pad)))
    width += -width % supersample
    height += -height % supersample
    screen = np.empty_like(view)
    screen[:, 0] = (view[:, 0] - lo[0]) * scale + pad
    screen[:, 1] = height - ((view[:, 1] - lo[1]) * scale + pad)
    screen[:, 2] = view[:, 2]
    triangles = screen[np.asarray(faces, dtype=np.int64)]
    drawn = np.arange(len(triangles))
    if closed is not None:
        e1, e2 = triangles[:, 1, :2] - triangles[:, 0, :2], triangles[:, 2, :2] - triangles[:, 0, :2]
        facing_away = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] > 0  # screen y points down
        drawn = np.flatnonzero(~(np.asarray(closed, dtype=bool) & facing_away))
    owner = rasterize(triangles[drawn], width, height)
    owner = np.where(owner >= 0, drawn[np.maximum(owner, 0)], -1)
    shade = _shading(view, faces)
    colors = CLAY[None, :] if face_colors is None else np.asarray(face_colors[:, :3], dtype=np.float32)
    palette = np.empty((len(shade) + 1, 3), dtype=np.uint16)
    palette[0] = BACKGROUND
    palette[1:] = np.clip(np.round(shade[:, None] * colors), 0, 255)
    picture = palette[owner + 1].reshape(height, width, 3)
    total = np.zeros((height // supersample, width // supersample, 3), dtype=np.uint16)
    for dy in range(supersample):
        for dx in range(supersample):
            total += picture[dy::supersample, dx::supersample]
    return ((total + supersample * supersample // 2) // (supersample * supersample)).astype(np.uint8)


def _shading(view: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Two-sided Lambert per face: many meshes wind some triangles the wrong way round."""
    corners = view[np.asarray(faces, dtype=np.int64)]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    normals /= np.where(lengths > 0, lengths, 1)[:, None]
    normals[normals[:, 2] < 0] *= -1
    light = LIGHT / np.linalg.norm(LIGHT)
    return AMBIENT + (1 - AMBIENT) * np.clip(normals @ light, 0, 1)


def rasterize(triangles: np.ndarray, width: int, height: int) -> np.ndarray:
    """For each pixel (row-major), the index of the nearest triangle covering its centre, or -1.

    ``triangles`` is (F, 3, 3): screen x, screen y, depth (larger is nearer). Triangles are taken in
    batches of similar height; each batch is cut into row spans and the spans into pixels, so the
    work is proportional to the pixels covered.
    """
    depth = np.full(width * height, -np.inf, dtype=np.float32)
    owner = np.full(width * height, -1, dtype=np.int32)
    x, y = triangles[:, :, 0], triangles[:, :, 1]
    top = np.clip(np.ceil(y.min(axis=1) - 0.5), 0, height).astype(np.int64)
    bottom = np.clip(np.floor(y.max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    left = np.clip(np.floor(x.min(axis=1)), 0, width)
    right = np.clip(np.ceil(x.max(axis=1)), 0, width)
    rows = bottom - top + 1
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    usable = np.flatnonzero((rows > 0) & (right > left) & (np.abs(area) > 1e-9))
    order = usable[np.argsort(rows[usable], kind="stable")]
    cost = np.cumsum(rows[order] * (right[order] - left[order] + 1))
    start, spent = 0, 0.0
    while start < len(order):
        end = int(np.searchsorted(cost, spent + BATCH, side="right"))
        end = max(start + 1, min(end, start + max(1, BATCH // int(rows[order[max(start, end - 1)]]))))
        _fill(order[start:end], triangles, top, rows, width, depth, owner)
        spent = float(cost[end - 1])
        start = end
    return owner


def _fill(ids: np.ndarray, triangles: np.ndarray, top: np.ndarray, rows: np.ndarray, width: int,
          depth: np.ndarray, owner: np.ndarray) -> None:
    """Rasterise the triangles ``ids`` into the depth and owner buffers, nearest wins."""
    tri = triangles[ids].astype(np.float64)
    count = int(rows[ids].max())
    row = top[ids][:, None] + np.arange(count)[None, :]
    valid = row < (top[ids] + rows[ids])[:, None]
    sy = row + 0.5
    lo = np.full(row.shape, np.inf)
    hi = np.full(row.shape, -np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ax, ay = tri[:, a, 0][:, None], tri[:, a, 1][:, None]
        bx, by = tri[:, b, 0][:, None], tri[:, b, 1][:, None]
        crosses = (np.minimum(ay, by) <= sy) & (sy <= np.maximum(ay, by)) & (ay != by)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = ax + (sy - ay) * (bx - ax) / (by - ay)
        lo = np.where(crosses, np.minimum(lo, at), lo)
        hi = np.where(crosses, np.maximum(hi, at), hi)
    first = np.clip(np.ceil(np.nan_to_num(lo, posinf=width) - 0.5), 0, width).astype(np.int64)
    last = np.clip(np.floor(np.nan_to_num(hi, neginf=-1) - 0.5), -1, width - 1).astype(np.int64)
    spans = np.where(valid, np.maximum(last - first + 1, 0), 0).ravel()
    total = int(spans.sum())
    if total == 0:
        return
    # depth is affine in screen space: z = z0 + dz/dx (x - x0) + dz/dy (y - y0); work it out once per
    # span, so each pixel costs one multiply-add
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    dzdx = (e1[:, 2] * e2[:, 1] - e2[:, 2] * e1[:, 1]) / det
    dzdy = (e2[:, 2] * e1[:, 0] - e1[:, 2] * e2[:, 0]) / det
    start_x = first + 0.5
    z_start = (tri[:, 0, 2][:, None] + dzdx[:, None] * (start_x - tri[:, 0, 0][:, None])
               + dzdy[:, None] * (sy - tri[:, 0, 1][:, None]))
    used = np.flatnonzero(spans)
    spans = spans[used]
    base = (row * width + first).ravel()[used]
    slope = np.broadcast_to(dzdx[:, None], row.shape).ravel()[used].astype(np.float32)
    z0 = z_start.ravel()[used].astype(np.float32)
    which = np.repeat(np.arange(len(used), dtype=np.int32), spans)
    offset = np.arange(total, dtype=np.int32) - np.repeat((np.cumsum(spans) - spans).astype(np.int32), spans)
    pixel = base[which] + offset
    z = z0[which] + slope[which] * offset.astype(np.float32)
    np.maximum.at(depth, pixel, z)
    nearest = z >= depth[pixel]
    owner[pixel[nearest]] = ids[used[which[nearest]] // count]
