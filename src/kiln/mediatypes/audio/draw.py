"""Pictures of sound, computed with numpy from decoded PCM and written with Pillow.

* :func:`peaks`: the loudest sample in each of N equal slices (0..1), the data the player draws.
* :func:`waveform_picture`: those peaks as mirrored bars, the gallery thumbnail and the page's
  waveform image (shown as is without JavaScript).
* :func:`spectrogram_picture`: one FFT per pixel column (as MediaGoblin's spectrogram, after
  Freesound's), frequencies on a logarithmic axis, loudness in decibels through a heat palette.

Everything works slice by slice on a memory map, so a twelve-hour recording costs no more memory
than a song.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

FULL_SCALE = 32768.0
FFT_SIZE = 2048
FLOOR_DB = -90.0
LOWEST_HZ = 40.0

# The heat palette: silence is black, then blue, purple, red, orange, pale yellow.
_STOPS = [(0.0, (0, 0, 0)), (0.15, (16, 12, 70)), (0.35, (110, 20, 130)), (0.6, (215, 45, 45)),
          (0.82, (250, 160, 30)), (1.0, (255, 250, 205))]


def peaks(samples: np.ndarray, count: int) -> list[float]:
    """The largest absolute sample in each of ``count`` equal slices of ``samples``, 0..1, 3 decimals."""
    total = len(samples)
    if total == 0:
        return [0.0] * count
    edges = np.linspace(0, total, count + 1).astype(np.int64)
    out = np.zeros(count)
    for i in range(count):
        start = min(int(edges[i]), total - 1)
        stop = max(int(edges[i + 1]), start + 1)
        out[i] = np.abs(np.asarray(samples[start:stop], dtype=np.int32)).max() / FULL_SCALE
    return [round(float(v), 3) for v in np.clip(out, 0.0, 1.0)]


def _columns(values: Sequence[float], width: int) -> np.ndarray:
    """``values`` stretched or squeezed to ``width`` columns (squeezing keeps each group's maximum)."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) == 0:
        return np.zeros(width)
    edges = np.linspace(0, len(data), width + 1).astype(np.int64)
    return np.array([data[min(edges[i], len(data) - 1):max(edges[i + 1], edges[i] + 1)].max() for i in range(width)])


def waveform_picture(values: Sequence[float], width: int, height: int, colour: tuple[int, int, int],
                     background: tuple[int, int, int] | None, bar: int = 3, gap: int = 1) -> Image.Image:
    """Mirrored bars, ``bar`` pixels wide with ``gap`` between, scaled so the loudest fills 90%.

    With ``background`` None the picture is transparent around the bars (RGBA)."""
    step = bar + gap
    bars = max(1, width // step)
    heights = _columns(values, bars)
    loudest = heights.max()
    if loudest > 0:
        heights = heights / loudest
    half = (height - 2) / 2 * 0.9
    middle = (height - 1) / 2
    rows = np.abs(np.arange(height) - middle)[:, None]  # distance of each row from the middle line
    reach = np.maximum(heights * half, 0.75)[None, :]  # silence still shows as a thin line
    lit_bars = rows <= reach  # (height, bars)
    lit = np.zeros((height, width), dtype=bool)
    for offset in range(bar):
        columns = np.arange(bars) * step + offset
        inside = columns < width
        lit[:, columns[inside]] = lit_bars[:, inside]
    if background is None:
        pixels = np.zeros((height, width, 4), dtype=np.uint8)
        pixels[lit] = (*colour, 255)
        return Image.fromarray(pixels, "RGBA")
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = background
    pixels[lit] = colour
    return Image.fromarray(pixels, "RGB")


def _palette() -> np.ndarray:
    positions = np.linspace(0.0, 1.0, 256)
    stops = np.array([s[0] for s in _STOPS])
    colours = np.array([s[1] for s in _STOPS], dtype=np.float64)
    return np.stack([np.interp(positions, stops, colours[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def spectrogram_picture(samples: np.ndarray, rate: int, width: int, height: int) -> Image.Image:
    """A ``width`` x ``height`` spectrogram: time left to right, low frequencies at the bottom."""
    total = len(samples)
    window = np.hanning(FFT_SIZE).astype(np.float32)
    frames = np.zeros((width, FFT_SIZE), dtype=np.float32)
    starts = np.linspace(0, max(total - FFT_SIZE, 0), width).astype(np.int64)
    for column, start in enumerate(starts):
        chunk = np.asarray(samples[start:start + FFT_SIZE], dtype=np.float32)
        frames[column, :len(chunk)] = chunk
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))  # (width, FFT_SIZE // 2 + 1)
    reference = FULL_SCALE * window.sum() / 2  # a full-scale sine
    decibels = 20 * np.log10(np.maximum(magnitude / reference, 1e-12))
    # One row per frequency on a logarithmic scale from 40 Hz to half the sample rate.
    nyquist = rate / 2
    freqs = LOWEST_HZ * (nyquist / LOWEST_HZ) ** (np.arange(height)[::-1] / max(height - 1, 1))
    bins = freqs / nyquist * (FFT_SIZE // 2)
    low = np.clip(np.floor(bins).astype(np.int64), 0, FFT_SIZE // 2 - 1)
    frac = (bins - low)[None, :]
    rows = decibels[:, low] * (1 - frac) + decibels[:, low + 1] * frac  # (width, height)
    levels = np.clip((rows - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0)
    pixels = _palette()[(levels.T * 255).astype(np.uint8)]  # (height, width, 3)
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")
