"""The orchestrator-facing description of the volcal_baseline pipeline (standard library only)."""

from __future__ import annotations

from pipelines.spec import GiB, InputSlot, Param, PipelineSpec, Resources

_CLOUD = (".las", ".laz")

SPEC = PipelineSpec(
    name="volcal_baseline",
    description=(
        "Cut, fill and net volumes per changed region between two surveys of an open-pit mine "
        "(LAS/LAZ), registered on stable areas (shapefile): coarse search + ICP, M3C2 change "
        "detection with a level of detection from the stable areas, DEM differencing."
    ),
    inputs=(
        InputSlot(
            "pre",
            accept=_CLOUD,
            max_bytes=20 * GiB,
            description="earlier survey, the reference frame (LAS or LAZ)",
        ),
        InputSlot(
            "post",
            accept=_CLOUD,
            max_bytes=20 * GiB,
            description="later survey, registered onto 'pre' (LAS or LAZ)",
        ),
        InputSlot(
            "shp",
            accept=(".shp",),
            max_bytes=1 * GiB,
            stem="stable",
            description="stable-area polygons (.shp), same CRS as the clouds, metres",
        ),
        InputSlot(
            "shx",
            accept=(".shx",),
            max_bytes=1 * GiB,
            stem="stable",
            description="shapefile index (.shx)",
        ),
        InputSlot(
            "dbf",
            required=False,
            accept=(".dbf",),
            max_bytes=1 * GiB,
            stem="stable",
            description="shapefile attributes (.dbf), optional",
        ),
        InputSlot(
            "prj",
            required=False,
            accept=(".prj",),
            max_bytes=1 * 1024**2,
            stem="stable",
            description="shapefile CRS (.prj), optional; geographic CRSs are refused",
        ),
    ),
    params=(
        Param(
            "grid_resolution_m",
            float,
            0.0,
            0.0,
            50.0,
            description="DEM cell size in m; 0 adapts it to the sparser epoch's density "
            "(about 4 points per cell)",
        ),
        Param(
            "core_spacing_m",
            float,
            0.0,
            0.0,
            100.0,
            description="spacing of M3C2 core points in m; 0 = automatic",
        ),
        Param(
            "cylinder_radius_m",
            float,
            0.0,
            0.0,
            50.0,
            description="M3C2 cylinder radius in m; 0 = about 30 points per epoch",
        ),
        Param(
            "normal_radius_m",
            float,
            0.0,
            0.0,
            100.0,
            description="M3C2 normal estimation radius in m; 0 = twice the cylinder radius",
        ),
        Param(
            "max_change_m",
            float,
            50.0,
            0.1,
            1000.0,
            description="largest change M3C2 looks for (cylinder half-length), m",
        ),
        Param(
            "lod_quantile",
            float,
            0.99,
            0.5,
            0.9999,
            description="quantile of |M3C2 distance| on stable areas used as level of detection",
        ),
        Param(
            "min_lod_m",
            float,
            0.0,
            0.0,
            10.0,
            description="lower bound for the level of detection, m",
        ),
        Param(
            "min_region_area_m2",
            float,
            25.0,
            0.0,
            1e7,
            description="smaller patches of significant change are ignored, m2",
        ),
        Param(
            "region_buffer_m",
            float,
            4.0,
            0.0,
            100.0,
            description="regions grow by this much to include rims below the level of detection, m",
        ),
        Param(
            "max_rotation_deg",
            float,
            3.0,
            0.0,
            10.0,
            description="largest heading misalignment searched by coarse registration, deg",
        ),
        Param(
            "max_icp_iterations",
            int,
            100,
            5,
            1000,
            description="ICP iterations before registration is declared not converged",
        ),
        Param(
            "max_registration_rmse_m",
            float,
            0.5,
            0.001,
            10.0,
            description="registration RMSE on stable areas above which the task fails, m",
        ),
        Param(
            "registration_points",
            int,
            200_000,
            1_000,
            5_000_000,
            description="points of the later epoch used by ICP",
        ),
        Param(
            "ground_classes",
            str,
            "auto",
            description="ASPRS classes that measure the ground: 'auto' (class 2 where an epoch "
            "has it, else all but noise 7 and 18), 'all', or codes such as '2' or '2,8'",
        ),
        Param(
            "outlier_filter",
            bool,
            True,
            description="drop points far above or below the ground around them (birds, dust, "
            "noise): beyond 6 robust standard deviations and 1 m of their 5 m cell's median",
        ),
        Param("seed", int, 0, 0, 2**31 - 1, description="seed for the random subsampling"),
    ),
    resources=Resources(cpus=2.0, memory_bytes=4 * GiB, gpus=0, timeout_s=3600, pids=256),
    image="pipeline-volcal_baseline:latest",
    command=(
        "python3",
        "-m",
        "pipelines.volcal_baseline",
        "--pre",
        "{in:pre}",
        "--post",
        "{in:post}",
        "--stable",
        "{in:shp}",
        "--params",
        "{params}",
        "--out",
        "{out}",
    ),
)
