"""`pip install .` gives a product that reconciles: the wheel holds every module and every
`dbt_like_sql/` model, and the demo run from outside the source tree fills recon_items.

The fresh venv takes its dependencies from the running interpreter's site-packages through a .pth
line (no download); the project itself comes only from the wheel, installed with --no-deps."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import duckdb
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    for folder in ("pagorecon_dagster", "dbt_like_sql"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = out.glob("pagorecon-*.whl")
    return wheel


def test_the_wheel_installed_in_a_fresh_venv_runs_the_demo(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pagorecon_dagster").rglob("*.py") if "__pycache__" not in p.parts}
    models = {"pagorecon_dagster/_sql/" + p.relative_to(ROOT / "dbt_like_sql").as_posix() for p in (ROOT / "dbt_like_sql").rglob("*.sql")}
    assert modules - names == set() and models - names == set()
    assert len(models) > 10

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # `import site; site.addsitedir(...)` (unlike a plain path line) also runs that folder's own .pth
    # files, which is where the project venv's dependencies hook in; the editable pagorecon there is
    # shadowed because the wheel's copy sits earlier on sys.path.
    (site / "project_deps.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "PAGORECON_HOME": str(outside / "home"),
           "DAGSTER_HOME": ""}
    env.pop("DAGSTER_HOME")
    where = subprocess.run([str(python), "-c", "import pagorecon_dagster.warehouse.duckdb as w; print(w.__file__); print(w.SQL_DIR)"],
                           cwd=outside, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1] == str(site / "pagorecon_dagster" / "_sql")

    demo = subprocess.run([str(venv / "bin" / "pagorecon"), "demo", "--stores", "1", "--days", "3"],
                          cwd=outside, env=env, capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr[-3000:]
    with connect(home_lake(outside / "home"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM recon_items").fetchone()[0] > 0
