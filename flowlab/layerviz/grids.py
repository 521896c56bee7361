"""Regular grids to push or pull through a flow: lines (cartesian or polar), a plane of points for fields, and the
angle sectors that colour base samples so each can be followed."""
from __future__ import annotations

import math

import numpy as np

GRID_LINES = 13  # cartesian grid: lines per direction (odd, so one line runs through the centre)
GRID_POINTS = 80  # points per cartesian line: enough for the bent images to look smooth
POLAR_RADII = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)  # circles of the base grid: most Gaussian mass lies inside radius 2
POLAR_RAYS = 16
POLAR_R_MAX = 3.0


def cartesian_lines(plot_range, n_lines: int = GRID_LINES, n_pts: int = GRID_POINTS) -> np.ndarray:
    """A regular grid as lines: (2 * n_lines, n_pts, 2); first the lines of constant x, then those of constant y."""
    (x0, x1), (y0, y1) = plot_range
    if n_lines < 2 or n_pts < 2:
        raise ValueError("A grid needs at least 2 lines of at least 2 points.")
    gx, gy = np.linspace(x0, x1, n_lines), np.linspace(y0, y1, n_lines)
    tx, ty = np.linspace(x0, x1, n_pts), np.linspace(y0, y1, n_pts)
    vert = np.stack([np.broadcast_to(gx[:, None], (n_lines, n_pts)), np.broadcast_to(ty, (n_lines, n_pts))], -1)
    horiz = np.stack([np.broadcast_to(tx, (n_lines, n_pts)), np.broadcast_to(gy[:, None], (n_lines, n_pts))], -1)
    return np.concatenate([vert, horiz]).astype(np.float64)


def polar_lines(radii=POLAR_RADII, n_rays: int = POLAR_RAYS, r_max: float = POLAR_R_MAX,
                n_pts: int = 96) -> np.ndarray:
    """A polar grid as lines: (len(radii) + n_rays, n_pts, 2); first the circles, then the rays from the origin."""
    t = np.linspace(0.0, 2.0 * math.pi, n_pts)
    circles = [np.stack([r * np.cos(t), r * np.sin(t)], -1) for r in radii]
    s = np.linspace(0.0, r_max, n_pts)
    rays = [np.stack([s * math.cos(a), s * math.sin(a)], -1) for a in np.arange(n_rays) * 2.0 * math.pi / n_rays]
    return np.stack(circles + rays).astype(np.float64)


def angle_sectors(z, n: int = 8) -> np.ndarray:
    """Integer sector 0..n-1 of the angle of each 2-D point, so base samples can be coloured and followed."""
    z = np.asarray(z)
    a = np.mod(np.arctan2(z[:, 1], z[:, 0]), 2.0 * math.pi)
    return np.minimum((a / (2.0 * math.pi) * n).astype(np.int64), n - 1)


def plane_grid(plot_range, n: int = 80):
    """Regular n x n grid: xs (n,), ys (n,), points (n*n, 2) row-major in y."""
    (x0, x1), (y0, y1) = plot_range
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([X.ravel(), Y.ravel()], axis=1)
