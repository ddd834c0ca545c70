"""``lake jobs submit``: run a job on a Spark cluster through ``spark-submit``.

The project's packages (``lake``, ``catalog`` and the jobs folder) are shipped with
``--py-files``; the driver runs ``lake jobs run NAME`` with the cluster as its Spark
master and the caller's settings in its environment; its log streams to the terminal
and its exit status is returned.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import catalog
from lake.config import Settings
from lake.errors import SparkError
from lake.spark import ensure_java, spark_conf

# The driver program spark-submit runs: a file of the CLI package (a path, not an import).
ENTRY = Path(__file__).parents[1] / "cli" / "spark_entry.py"


def package_zip(folders: list[Path], dest: Path) -> Path:
    """A zip of Python packages/folders for ``--py-files``."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in folders:
            for path in folder.rglob("*"):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix in (
                        ".py", ".yaml", ".yml", ".ini", ".properties", ".mako"):
                    zf.write(path, Path(folder.name) / path.relative_to(folder))
    return dest


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as LAKE_* variables for the driver process (secrets included, never printed)."""
    env = {"LAKE_ROOT": settings.root_uri, "LAKE_CATALOG_URL": settings.catalog_url}
    s3 = settings.s3
    for key, value in (("ENDPOINT", s3.endpoint), ("ACCESS_KEY", s3.access_key), ("REGION", s3.region),
                       ("SECRET_KEY", s3.secret_key.get_secret_value() if s3.secret_key else None)):
        if value:
            env[f"LAKE_S3_{key}"] = value
    if settings.jobs_dir:
        env["LAKE_JOBS_DIR"] = str(Path(settings.jobs_dir).resolve())
    if settings.catalog.lineage_file:
        env["LAKE_CATALOG_LINEAGE_FILE"] = settings.catalog.lineage_file
    if settings.catalog.openlineage_url:
        env["LAKE_CATALOG_OPENLINEAGE_URL"] = settings.catalog.openlineage_url
    return env


def check_master(master: str, timeout: float = 5.0) -> None:
    """Refuse a ``spark://`` master none of whose hosts accepts a connection, in seconds.

    spark-submit itself retries for minutes and ends in a long Java trace ("All masters are
    unresponsive"); a job with nothing to do would even "succeed" against a dead master.
    """
    if not master.startswith("spark://"):
        return  # local[*], yarn, k8s://...: spark-submit says what is wrong
    problems = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SparkError(f"{master}: a Spark master URL is spark://host:port (several: spark://h1:p1,h2:p2)")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except OSError as exc:
            problems.append(f"{host}:{port} ({exc.strerror or exc})")
    raise SparkError(f"the Spark master {master} does not answer: {', '.join(problems)}. Start it, or check "
                     "--master (the master's web UI, port 8080 by default, shows its spark:// URL)", master=master)


def submit(settings: Settings, job: str, master: str, jobs_folder: Path, *, params: Mapping[str, str],
           full_refresh: bool = False, deploy_mode: str = "client") -> int:
    """Run ``job`` on ``master`` (``spark://host:7077``); returns the driver's exit status."""
    import pyspark  # heavy: pyspark, only once Spark runs

    check_master(master)
    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    if not spark_submit.exists():
        raise SparkError(f"spark-submit not found next to pyspark ({spark_submit}); reinstall pyspark")
    ensure_java()
    env = {**os.environ, **settings_env(settings), "LAKE_SPARK_MASTER": master, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "LAKE_JOBS_DIR": str(jobs_folder.resolve())}
    with tempfile.TemporaryDirectory(prefix="lake-submit-") as tmp:
        code = package_zip([Path(__file__).resolve().parents[1], Path(catalog.__file__).parent, jobs_folder],
                           Path(tmp) / "lake-code.zip")
        cmd = [str(spark_submit), "--master", master, "--deploy-mode", deploy_mode, "--py-files", str(code),
               "--name", f"lake-job-{job}"]
        for key, value in spark_conf(settings).items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [str(ENTRY), "jobs", "run", job]
        for key, value in params.items():
            cmd += ["--param", f"{key}={value}"]
        if full_refresh:
            cmd.append("--full-refresh")
        try:
            return subprocess.run(cmd, env=env).returncode
        except OSError as exc:
            raise SparkError(f"could not start spark-submit: {exc}") from exc
