"""The student bundle (`cnnlab release --bundle`) and the student side of nbgrader.

A bundle holds the student notebook (no solutions, no hidden tests), a README on how to open,
validate and hand it in, and a Jupyter configuration that shows students nbgrader's Validate button
and none of the instructor tools. The configuration is checked the way Jupyter reads it: Jupyter
Server's own extension lookup, and `jupyter labextension list`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cnnlab.instructor.bundle import StudentTools, bundle, disable_commands, student_config
from cnnlab.instructor.course import Course

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSIGNMENTS = sorted(
    p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
)
NBGRADER_SERVER = "nbgrader.server_extensions."


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bundles")
    paths = bundle(Course.load(ROOT), ASSIGNMENTS, out=out, book_url="", log=lambda *a: None)
    return {p.stem: p for p in paths}


def test_one_zip_per_assignment_with_the_student_notebook_only(bundles):
    assert sorted(bundles) == ASSIGNMENTS
    for a, path in bundles.items():
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            assert names == {
                f"{a}/{a}.ipynb",
                f"{a}/README.md",
                f"{a}/jupyter-config/jupyter_server_config.d/cnnlab-student.json",
                f"{a}/jupyter-config/labconfig/page_config.json",
            }, names
            assert z.read(f"{a}/{a}.ipynb") == (ROOT / "exercises" / a / f"{a}.ipynb").read_bytes()
            for name in names:
                text = z.read(name).decode()
                for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
                    assert marker not in text, f"{name}: {marker}"
            readme = z.read(f"{a}/README.md").decode()
            assert "Validate" in readme and "Hand it in" in readme and f"{a}.ipynb" in readme
            assert "solutions" not in readme and "exercises/" not in readme


def test_bundle_refuses_an_assignment_that_was_not_released(tmp_path):
    course = Course.load(ROOT)
    with pytest.raises(ValueError, match="release"):
        bundle(course, ["no_such_assignment"], out=tmp_path, log=lambda *a: None)


def unpack_config(tmp_path: Path, tools: StudentTools) -> Path:
    config = tmp_path / "jupyter-config"
    for name, content in student_config(tools).items():
        (config / name).parent.mkdir(parents=True, exist_ok=True)
        (config / name).write_text(json.dumps(content))
    return config


def jupyter(config: Path, *args: str) -> str:
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(config), "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run([*args], env=env, capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout + proc.stderr


SERVER_LOOKUP = (
    "import json\n"
    "from jupyter_server.extension.config import ExtensionConfigManager\n"
    "from jupyter_server.serverapp import ServerApp\n"
    "paths = ServerApp().config_file_paths\n"
    "print(json.dumps(ExtensionConfigManager(read_config_path=paths).get_jpserver_extensions()))\n"
)


@pytest.mark.parametrize("exchange", [False, True])
def test_student_config_shows_validate_and_hides_instructor_tools(tmp_path, exchange):
    config = unpack_config(tmp_path, StudentTools(exchange=exchange))
    # Jupyter Server: the lookup ServerApp.find_server_extensions does, with the bundle's config
    found = json.loads(
        jupyter(config, sys.executable, "-c", SERVER_LOOKUP).strip().splitlines()[-1]
    )
    nbgrader = {
        k[len(NBGRADER_SERVER) :]: v for k, v in found.items() if k.startswith(NBGRADER_SERVER)
    }
    assert nbgrader == {
        "formgrader": False,
        "course_list": False,
        "assignment_list": exchange,
        "validate_assignment": True,
    }
    # JupyterLab: the plugins it will not load
    listing = jupyter(config, str(BIN / "jupyter"), "labextension", "list")
    disabled = listing.split("Disabled extensions:", 1)[-1]
    for plugin in ("formgrader", "create-assignment", "course-list"):
        assert f"@jupyter/nbgrader:{plugin}" in disabled, listing
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    assert ("@jupyter/nbgrader:assignment-list" in disabled) is (not exchange)


def test_disable_commands_name_the_same_tools():
    cmds = disable_commands(StudentTools(exchange=False))
    assert (
        "jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader"
        in cmds
    )
    assert any("labextension disable" in c and "create-assignment" in c for c in cmds)
    assert not any("validate" in c for c in cmds)


@pytest.mark.slow  # one nbgrader generate_assignment
def test_cnnlab_release_bundle(tmp_path):
    from cnnlab.cli import main

    for name in ("nbgrader_config.py", "_config.yml"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "solutions" / "01_fc_vs_conv", tmp_path / "solutions" / "01_fc_vs_conv")
    assert main(["--course", str(tmp_path), "release", "01_fc_vs_conv", "--bundle"]) == 0
    path = tmp_path / "grading" / "bundles" / "01_fc_vs_conv.zip"
    with zipfile.ZipFile(path) as z:
        assert "01_fc_vs_conv/01_fc_vs_conv.ipynb" in z.namelist()
