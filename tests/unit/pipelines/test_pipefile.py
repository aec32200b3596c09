"""Pipeline files: what a valid file becomes, and every refusal naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.pipefile import PipelineFileError, load, parse
from pipelines.spec import GiB, MiB, Output

GOOD = b"""
name = "gdal_reproject"
version = "1.0.0"
description = "Reproject a GeoTIFF."
image = "pipeline-gdal_reproject:latest"
command = ["gdalwarp", "-t_srs", "{param:crs}", "-r", "{param:method}", "{in:raster}",
           "{out}/out.tif", "--config", "P", "{params}"]

[environment]
GDAL_CACHEMAX = "256"

[resources]
cpus = 1.5
memory = "512 MiB"
timeout_s = 120

[inputs.raster]
accept = [".TIF", ".tiff"]
max_bytes = "4 GiB"
description = "the GeoTIFF"

[inputs.world]
required = false
accept = [".tfw"]
max_bytes = 1048576
group = "raster"

[params.crs]
type = "str"
default = "EPSG:4326"
choices = ["EPSG:4326", "EPSG:3857"]

[params.method]
type = "str"
default = "bilinear"

[params.threads]
type = "int"
default = 2
min = 1
max = 64

[params.scale]
type = "float"
default = 1
min = 0.5

[[outputs]]
glob = "out.tif"
content_type = "image/tiff"
picture = false
required = true

[[outputs]]
glob = "*.png"
"""


def problems(raw: bytes) -> list[tuple[str, str]]:
    with pytest.raises(PipelineFileError) as info:
        parse(raw, "x.toml")
    return info.value.problems


def fields(raw: bytes) -> set[str]:
    return {f for f, _ in problems(raw)}


def test_a_valid_file_becomes_its_spec() -> None:
    spec = parse(GOOD, "/etc/p/gdal.toml")
    assert (spec.name, spec.version, spec.image) == (
        "gdal_reproject",
        "1.0.0",
        "pipeline-gdal_reproject:latest",
    )
    assert spec.source == "/etc/p/gdal.toml" and len(spec.digest) == 64
    assert [s.name for s in spec.inputs] == ["raster", "world"]
    raster, world = spec.inputs
    assert raster.required and raster.accept == (".tif", ".tiff") and raster.max_bytes == 4 * GiB
    assert not world.required and world.max_bytes == 1048576 and world.group == "raster"
    params = {p.name: p for p in spec.params}
    assert params["crs"].choices == ("EPSG:4326", "EPSG:3857")
    assert params["threads"].kind is int and (
        params["threads"].minimum,
        params["threads"].maximum,
    ) == (1, 64)
    # An integer default of a float parameter is a float.
    assert params["scale"].default == 1.0 and isinstance(params["scale"].default, float)
    r = spec.resources
    assert (r.cpus, r.memory_bytes, r.timeout_s, r.gpus, r.pids) == (1.5, 512 * MiB, 120, 0, 256)
    assert spec.environment == (("GDAL_CACHEMAX", "256"),)
    assert spec.output("out.tif") == Output("out.tif", "image/tiff", False, True)
    assert spec.output("a/b.png") is not None and spec.output("x.json") is None
    assert spec.validate_params({"threads": 4}) == {
        "crs": "EPSG:4326",
        "method": "bilinear",
        "threads": 4,
        "scale": 1.0,
    }


def test_the_digest_is_the_files_sha256(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "g.toml"
    path.write_bytes(GOOD)
    assert load(path).digest == hashlib.sha256(GOOD).hexdigest()


def test_messages_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(GOOD.replace(b'max_bytes = "4 GiB"', b'max_bytes = "lots"'))
    with pytest.raises(PipelineFileError) as info:
        load(path)
    assert str(info.value) == (
        f'{path}: inputs.raster.max_bytes: must be a number of bytes or a size such as "4 GiB"'
    )


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ((b'version = "1.0.0"', b'version = "1.0.0"\ncolour = "red"'), "colour", "unknown key"),
        ((b"timeout_s = 120", b"timeout_s = 120\nswap = 1"), "resources.swap", "unknown key"),
        ((b"group = ", b"grop = "), "inputs.world.grop", "unknown key"),
        ((b"min = 1\n", b"min = 1\nstep = 2\n"), "params.threads.step", "unknown key"),
        ((b"picture = false", b"picture = false\nshow = 1"), "outputs[0].show", "unknown key"),
        ((b'name = "gdal_reproject"', b'name = "Gdal Reproject"'), "name", "must match"),
        ((b'name = "gdal_reproject"\n', b""), "name", "is required"),
        ((b'image = "pipeline-gdal_reproject:latest"', b'image = ""'), "image", "empty"),
        ((b"cpus = 1.5", b"cpus = 0"), "resources.cpus", "positive"),
        ((b"cpus = 1.5", b'cpus = "two"'), "resources.cpus", "must be a number"),
        ((b'memory = "512 MiB"', b"memory = -5"), "resources.memory", "positive"),
        ((b"timeout_s = 120", b"timeout_s = 0"), "resources.timeout_s", "> 0"),
        ((b"min = 1\nmax = 64", b"min = 65\nmax = 64"), "params.threads.min", "greater than max"),
        ((b"default = 2\n", b"default = 100\n"), "params.threads.default", "<= 64"),
        ((b"default = 2\n", b"default = 2.5\n"), "params.threads.default", "integer"),
        ((b'type = "int"', b'type = "integer"'), "params.threads.type", "one of int"),
        ((b'default = "bilinear"', b"default = 3"), "params.method.default", "string"),
        ((b'default = "EPSG:4326"', b'default = "EPSG:2056"'), "params.crs.default", "one of"),
        (
            (b'type = "str"\ndefault = "bilinear"', b'type = "str"\ndefault = "b"\nmin = 1'),
            "params.method.min",
            "only int and float",
        ),
        ((b'default = "bilinear"\n', b""), "params.method.default", "is required"),
        ((b'accept = [".tfw"]', b'accept = ["tfw"]'), "inputs.world.accept", "extension"),
        ((b"required = false", b'required = "no"'), "inputs.world.required", "true or false"),
        ((b'glob = "*.png"', b'glob = "../*.png"'), "outputs[1].glob", "relative"),
        (
            (b'content_type = "image/tiff"', b'content_type = "tiff"'),
            "outputs[0].content_type",
            "media type",
        ),
        ((b'GDAL_CACHEMAX = "256"', b"GDAL_CACHEMAX = 256"), "environment.GDAL_CACHEMAX", "string"),
    ],
)
def test_each_bad_field_is_named(edit: tuple[bytes, bytes], field: str, words: str) -> None:
    old, new = edit
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1))
    assert any(f == field and words in m for f, m in found), found


def test_templates_must_name_slots_and_parameters_that_exist() -> None:
    raw = GOOD.replace(b'"{in:raster}"', b'"{in:rastre}"').replace(
        b'"{param:crs}"', b'"{param:srs}"'
    )
    found = problems(raw.replace(b'"{params}"', b'"{paramz}"'))
    assert ("command[5]", "{in:rastre} names no input slot 'rastre'") in found
    assert ("command[2]", "{param:srs} names no parameter 'srs'") in found
    assert any(f == "command[9]" and "unknown placeholder {paramz}" in m for f, m in found)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    raw = GOOD.replace(b"cpus = 1.5", b"cpus = -1").replace(b"max = 64", b"max = 0")
    assert fields(raw) >= {"resources.cpus", "params.threads.min"}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"name = ", "is not valid TOML"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_unreadable_files(raw: bytes, words: str) -> None:
    assert words in problems(raw)[0][1]


def test_a_file_without_inputs_or_command_is_refused() -> None:
    raw = b'name = "x"\nversion = "1"\ndescription = "d"\nimage = "i"\ncommand = []\n'
    found = dict(problems(raw))
    assert found["inputs"] == "at least one input slot is required"
    assert found["command"] == "must not be empty"


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineFileError, match=r"nope\.toml: cannot be read"):
        load(tmp_path / "nope.toml")
