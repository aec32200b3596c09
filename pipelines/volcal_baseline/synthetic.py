"""Synthetic surveys with analytic ground truth.

A smooth hilly terrain is sampled twice (uniform random x, y). Between the epochs, pits are dug
and mounds are heaped with shapes whose volume has a closed form; the later epoch gets Gaussian
noise and a rigid misalignment (rotation about the scene centre plus a shift). Stable areas are
polygons kept well away from every change. Coordinates are written at UTM magnitudes.

    python -m pipelines.volcal_baseline.synthetic --out DIR --points 1000000 --noise 0.03 \
        --shift 1 --rotation 1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import laspy
import numpy as np
import shapefile
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from shapely.geometry import Polygon

from .grid import BoolArray, FloatArray

UTM_ORIGIN = (500_000.0, 5_000_000.0, 250.0)
DEFAULT_VOLUMES = (200.0, 500.0, 900.0, 2_000.0, 5_000.0, 20_000.0)
# Coordinates (local) and ASPRS class of a chunk of points.
Points = tuple[FloatArray, NDArray[np.uint8]]
# Points generated and written at a time: memory stays bounded whatever the survey size.
CHUNK_POINTS = 2_000_000
# The synthetic site's CRS: UTM zone 33N, written into the clouds and (as ESRI WKT) the .prj.
UTM_EPSG = 32633
# A UTM zone 33N WKT, so GIS tools opening the shapefile see a metric CRS.
ESRI_PRJ = (
    'PROJCS["WGS_1984_UTM_Zone_33N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",'
    'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
    'PARAMETER["Central_Meridian",15.0],PARAMETER["Scale_Factor",0.9996],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)


@dataclass(frozen=True)
class Feature:
    """A pit (negative) or mound (positive) with compact support of radius ``radius``.

    ``dome``: height h (1 - (r/R)^2)^2, volume pi R^2 h / 3.
    ``frustum``: flat floor of radius 0.6 R, straight walls up to R, volume
    pi h / 3 (R^2 + R r + r^2).
    """

    kind: str  # "pit" or "mound"
    shape: str  # "dome" or "frustum"
    cx: float
    cy: float
    radius: float
    height: float

    @property
    def inner(self) -> float:
        return 0.6 * self.radius

    @property
    def volume(self) -> float:
        r_out, h = self.radius, self.height
        if self.shape == "dome":
            return math.pi * r_out**2 * h / 3.0
        r_in = self.inner
        return math.pi * h / 3.0 * (r_out**2 + r_out * r_in + r_in**2)

    @property
    def signed_volume(self) -> float:
        return -self.volume if self.kind == "pit" else self.volume

    def dz(self, x: FloatArray, y: FloatArray) -> FloatArray:
        r = np.hypot(x - self.cx, y - self.cy)
        if self.shape == "dome":
            rho = np.clip(r / self.radius, 0.0, 1.0)
            prof = (1.0 - rho**2) ** 2
        else:
            prof = np.clip((self.radius - r) / (self.radius - self.inner), 0.0, 1.0)
        sign = -1.0 if self.kind == "pit" else 1.0
        return sign * self.height * prof


def feature_for_volume(volume: float, kind: str, shape: str, cx: float, cy: float) -> Feature:
    """Dimensions with realistic aspect ratios that give exactly ``volume``."""
    if shape == "dome":
        # h = 0.2 R  =>  V = pi R^3 0.2 / 3
        radius = (3.0 * volume / (0.2 * math.pi)) ** (1.0 / 3.0)
        return Feature(kind, shape, cx, cy, radius, 0.2 * radius)
    # h = 0.15 R, r = 0.6 R  =>  V = pi 0.15 R^3 (1 + 0.6 + 0.36) / 3
    radius = (volume / (math.pi * 0.15 * 1.96 / 3.0)) ** (1.0 / 3.0)
    return Feature(kind, shape, cx, cy, radius, 0.15 * radius)


@dataclass(frozen=True)
class SurveyConfig:
    points: int = 1_000_000
    post_points: int | None = None  # None: same as ``points``
    size_m: float = 400.0
    noise_m: float = 0.03
    shift_m: float = 0.0
    rotation_deg: float = 0.0
    volumes: tuple[float, ...] = DEFAULT_VOLUMES
    seed: int = 0
    pre_name: str = "pre.las"
    post_name: str = "post.laz"
    pre_format: int = 1
    post_format: int = 6
    origin: tuple[float, float, float] = UTM_ORIGIN
    # Real survey clutter, none by default. Ground points get class 2 when ``classified``,
    # everything else class 1 (unclassified), as a ground classifier leaves a cloud.
    classified: bool = False
    machines: int = 0  # haul trucks parked per epoch, at other places in each
    outliers: float = 0.0  # share of each epoch's points that are birds (up) or noise (down)


@dataclass
class Truth:
    features: list[dict[str, float | str]] = field(default_factory=list)
    cut_volume_m3: float = 0.0
    fill_volume_m3: float = 0.0
    net_volume_m3: float = 0.0
    misalignment: list[list[float]] = field(default_factory=list)
    config: dict[str, object] = field(default_factory=dict)


class Terrain:
    """A smooth, hilly surface with slopes in every direction (so registration is constrained)."""

    def __init__(self, size: float, rng: np.random.Generator) -> None:
        self.size = size
        self.hills = [
            (
                rng.uniform(0, size),
                rng.uniform(0, size),
                rng.uniform(-12, 12),
                rng.uniform(0.12, 0.25) * size,
            )
            for _ in range(7)
        ]
        self.phase = rng.uniform(0, 2 * math.pi, 2)
        self.tilt = rng.uniform(-0.03, 0.03, 2)

    def z(self, x: FloatArray, y: FloatArray) -> FloatArray:
        s = self.size
        z = (
            3.0
            * np.sin(2 * math.pi * x / (0.45 * s) + self.phase[0])
            * np.cos(2 * math.pi * y / (0.55 * s) + self.phase[1])
        )
        z += self.tilt[0] * x + self.tilt[1] * y
        for hx, hy, amp, sig in self.hills:
            z += amp * np.exp(-((x - hx) ** 2 + (y - hy) ** 2) / (2 * sig**2))
        return z


def stable_polygons(size: float) -> list[Polygon]:
    """Four corner patches and an L-shaped strip along the south edge, in local metres."""
    a = 0.16 * size
    m = 0.02 * size
    corners = [
        Polygon([(m, m), (m + a, m), (m + a, m + a), (m, m + a)]),
        Polygon([(size - m - a, m), (size - m, m), (size - m, m + a), (size - m - a, m + a)]),
        Polygon([(m, size - m - a), (m + a, size - m - a), (m + a, size - m), (m, size - m)]),
        Polygon(
            [
                (size - m - a, size - m - a),
                (size - m, size - m - a),
                (size - m, size - m),
                (size - m - a, size - m),
            ]
        ),
    ]
    strip = Polygon(
        [
            (size / 2 - a, m),
            (size / 2 + a, m),
            (size / 2 + a, m + 0.5 * a),
            (size / 2 - 0.25 * a, m + 0.5 * a),
            (size / 2 - 0.25 * a, m + 1.2 * a),
            (size / 2 - a, m + 1.2 * a),
        ]
    )
    return [*corners, strip]


def place_features(
    cfg: SurveyConfig, stable: shapely.Geometry, rng: np.random.Generator
) -> list[Feature]:
    size = cfg.size_m
    # Keep clear of the survey edge even after the worst misalignment (a 2 deg turn moves the
    # corners by ~size/40) and of the stable areas by a margin wider than any region buffer.
    edge = 0.04 * size + 2.0 * cfg.shift_m + 5.0
    gap = 12.0
    shapes = ("dome", "frustum")
    kinds = ("pit", "mound")
    placed: list[Feature] = []
    order = sorted(range(len(cfg.volumes)), key=lambda i: -cfg.volumes[i])
    for n, i in enumerate(order):
        vol = cfg.volumes[i]
        kind, shp = kinds[i % 2], shapes[(i // 2) % 2]
        proto = feature_for_volume(vol, kind, shp, 0.0, 0.0)
        for _ in range(5000):
            cx, cy = rng.uniform(edge + proto.radius, size - edge - proto.radius, 2)
            if shapely.distance(stable, shapely.Point(cx, cy)) < proto.radius + gap:
                continue
            if all(
                math.hypot(cx - f.cx, cy - f.cy) > f.radius + proto.radius + gap for f in placed
            ):
                placed.append(feature_for_volume(vol, kind, shp, float(cx), float(cy)))
                break
        else:
            raise ValueError(f"no room for feature {n} of {vol} m3 in a {size} m survey")
    return placed


@dataclass(frozen=True)
class Machine:
    """A parked haul truck: a box of ``height`` on a 10 m x 4 m footprint at (cx, cy)."""

    cx: float
    cy: float
    height: float = 4.0

    def covers(self, x: FloatArray, y: FloatArray) -> BoolArray:
        return (np.abs(x - self.cx) <= 5.0) & (np.abs(y - self.cy) <= 2.0)


def place_machines(
    cfg: SurveyConfig,
    stable: shapely.Geometry,
    features: Sequence[Feature],
    rng: np.random.Generator,
) -> list[Machine]:
    """Trucks on open ground: off the stable areas and the changed features."""
    placed: list[Machine] = []
    while len(placed) < cfg.machines:
        cx, cy = rng.uniform(15.0, cfg.size_m - 15.0, 2)
        if shapely.distance(stable, shapely.Point(cx, cy)) < 10.0:
            continue
        if any(math.hypot(cx - f.cx, cy - f.cy) < f.radius + 10.0 for f in features):
            continue
        placed.append(Machine(float(cx), float(cy)))
    return placed


def misalignment(cfg: SurveyConfig, centre: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Rigid transform: rotate by ``rotation_deg`` about a random axis through the scene centre,
    then shift by ``shift_m`` in a random direction."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = math.radians(cfg.rotation_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(ang) * k + (1 - math.cos(ang)) * (k @ k)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = centre - rot @ centre + cfg.shift_m * direction
    return t


def _las_header(origin: tuple[float, float, float], point_format: int) -> laspy.LasHeader:
    version = "1.4" if point_format >= 6 else "1.2"
    header = laspy.LasHeader(point_format=point_format, version=version)
    header.offsets = np.array(origin)
    header.scales = np.array([0.001, 0.001, 0.001])
    # As a survey export carries it: a WKT VLR in LAS 1.4, GeoTIFF keys in LAS 1.2.
    header.add_crs(CRS.from_epsg(UTM_EPSG))
    return header


def _write_las(
    path: Path,
    chunks: Iterator[Points],
    origin: tuple[float, float, float],
    point_format: int,
    rng: np.random.Generator,
) -> None:
    """Write the chunks (local coordinates) as one LAS or LAZ file, a chunk at a time, so that
    surveys of hundreds of millions of points are written in bounded memory."""
    header = _las_header(origin, point_format)
    compress = path.suffix.lower() == ".laz"
    with laspy.open(
        str(path),
        mode="w",
        header=header,
        do_compress=compress,
        laz_backend=laspy.LazBackend.LazrsParallel if compress else None,
    ) as writer:
        for xyz, cls in chunks:
            rec = laspy.ScaleAwarePointRecord.zeros(len(xyz), header=header)
            rec.classification = cls
            rec.x = xyz[:, 0] + origin[0]
            rec.y = xyz[:, 1] + origin[1]
            rec.z = xyz[:, 2] + origin[2]
            rec.intensity = rng.integers(0, 4000, len(xyz)).astype(np.uint16)
            writer.write_points(rec)


def write_shapefile(
    base: Path, polys: Sequence[Polygon], origin: tuple[float, float, float], prj: bool = True
) -> None:
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON) as w:
        w.field("name", "C", size=20)
        for i, poly in enumerate(polys):
            ring = [(x + origin[0], y + origin[1]) for x, y in poly.exterior.coords]
            # Shapefile outer rings run clockwise; shapely's may not.
            if shapely.LinearRing(ring).is_ccw:
                ring.reverse()
            w.poly([ring])
            w.record(f"stable_{i + 1}")
    if prj:
        base.with_suffix(".prj").write_text(ESRI_PRJ)


def generate(out: Path, cfg: SurveyConfig) -> Truth:
    """Write ``pre``, ``post`` and ``stable.*`` into ``out`` and return (and write) the truth."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    size = cfg.size_m
    terrain = Terrain(size, rng)
    polys = stable_polygons(size)
    features = place_features(cfg, shapely.union_all(polys), rng)
    # Clutter draws from streams of its own, so a survey without it is the same as before.
    clutter_rng = np.random.default_rng([cfg.seed, 2])
    machines = [place_machines(cfg, shapely.union_all(polys), features, clutter_rng) for _ in "ab"]

    def sample(n: int, epoch: int) -> Iterator[Points]:
        extra = np.random.default_rng([cfg.seed, 3, epoch])
        for start in range(0, n, CHUNK_POINTS):
            m = min(CHUNK_POINTS, n - start)
            xy = rng.uniform(0.0, size, (m, 2))
            z = terrain.z(xy[:, 0], xy[:, 1])
            if epoch == 1:
                for f in features:
                    z += f.dz(xy[:, 0], xy[:, 1])
            cls = np.full(m, 2 if cfg.classified else 1, dtype=np.uint8)
            for truck in machines[epoch]:
                on = truck.covers(xy[:, 0], xy[:, 1])
                z[on] += truck.height
                cls[on] = 1
            if cfg.outliers > 0:
                odd = extra.choice(m, extra.binomial(m, cfg.outliers), replace=False)
                up, down = odd[: len(odd) // 2], odd[len(odd) // 2 :]
                z[up] += extra.uniform(10.0, 60.0, len(up))
                z[down] -= extra.uniform(2.0, 10.0, len(down))
                cls[odd] = 1
            pts = np.column_stack([xy, z])
            pts += rng.normal(0.0, cfg.noise_m, pts.shape)
            yield pts, cls

    _write_las(out / cfg.pre_name, sample(cfg.points, 0), cfg.origin, cfg.pre_format, rng)
    centre = np.array(
        [size / 2, size / 2, float(terrain.z(np.array([size / 2]), np.array([size / 2]))[0])]
    )
    # From its own stream: the misalignment must be known before the first chunk of 'post'.
    mis = misalignment(cfg, centre, np.random.default_rng([cfg.seed, 1]))
    moved = (
        (p @ mis[:3, :3].T + mis[:3, 3], c) for p, c in sample(cfg.post_points or cfg.points, 1)
    )
    _write_las(out / cfg.post_name, moved, cfg.origin, cfg.post_format, rng)
    write_shapefile(out / "stable", polys, cfg.origin)

    # The misalignment in world coordinates, for comparing with the pipeline's transform.
    shift = np.eye(4)
    shift[:3, 3] = cfg.origin
    world = shift @ mis @ np.linalg.inv(shift)
    truth = Truth(
        features=[
            {
                **asdict(f),
                "cx": f.cx + cfg.origin[0],
                "cy": f.cy + cfg.origin[1],
                "volume_m3": f.volume,
                "net_m3": f.signed_volume,
            }
            for f in features
        ],
        cut_volume_m3=sum(f.volume for f in features if f.kind == "pit"),
        fill_volume_m3=sum(f.volume for f in features if f.kind == "mound"),
        net_volume_m3=sum(f.signed_volume for f in features),
        misalignment=world.tolist(),
        config={k: v for k, v in asdict(cfg).items()},
    )
    (out / "truth.json").write_text(json.dumps(asdict(truth), indent=2))
    return truth


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.volcal_baseline.synthetic",
        description="Write a synthetic survey with ground truth.",
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--points", type=int, default=1_000_000, help="points in the pre epoch")
    ap.add_argument("--post-points", type=int, default=None, help="points in the post epoch")
    ap.add_argument("--size", type=float, default=400.0, help="side of the square site, m")
    ap.add_argument("--noise", type=float, default=0.03, help="noise std per axis, m")
    ap.add_argument("--shift", type=float, default=0.0, help="misalignment shift, m")
    ap.add_argument("--rotation", type=float, default=0.0, help="misalignment rotation, deg")
    ap.add_argument(
        "--volumes",
        type=str,
        default=",".join(str(v) for v in DEFAULT_VOLUMES),
        help="comma-separated feature volumes, m3 (pits and mounds alternate)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classified", action="store_true", help="ground points as class 2")
    ap.add_argument("--machines", type=int, default=0, help="trucks parked per epoch")
    ap.add_argument("--outliers", type=float, default=0.0, help="share of birds and noise")
    ap.add_argument("--pre-name", default="pre.las")
    ap.add_argument("--post-name", default="post.laz")
    a = ap.parse_args(argv)
    cfg = SurveyConfig(
        points=a.points,
        post_points=a.post_points,
        size_m=a.size,
        noise_m=a.noise,
        shift_m=a.shift,
        rotation_deg=a.rotation,
        volumes=tuple(float(v) for v in a.volumes.split(",") if v),
        seed=a.seed,
        pre_name=a.pre_name,
        post_name=a.post_name,
        classified=a.classified,
        machines=a.machines,
        outliers=a.outliers,
    )
    truth = generate(a.out, cfg)
    print(
        json.dumps(
            {
                "cut_volume_m3": truth.cut_volume_m3,
                "fill_volume_m3": truth.fill_volume_m3,
                "net_volume_m3": truth.net_volume_m3,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
