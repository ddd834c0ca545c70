"""``lake monitor drift`` and ``lake monitor reports``: tables, JSON, HTML, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lake.cli.main import main
from lake.lakehouse import Lake
from tests.conftest import make_settings


@pytest.fixture
def lake(tmp_path: Path) -> Lake:  # the CLI tests run on a local folder (the API tests cover S3)
    return Lake(make_settings(root=str(tmp_path / "lakehouse")))


def run(capsys: pytest.CaptureFixture[str], lake: Lake, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(lake.storage.root), "monitor", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


DAY1 = ["--since", "2024-05-01", "--until", "2024-05-02T00:00:00Z"]
DAY2 = ["--since", "2024-05-02", "--time-column", "ts"]


def test_drift_table_and_exit_codes(served: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["drift", "--reference", "training:fraud", "--current", "logs.serving_fraud"]
    code, out, _ = run(capsys, served, *base, *DAY1, "--fail-on", "warn")
    assert code == 0 and "status: ok" in out
    for name in ("amount", "age", "country", "is_new"):
        assert name in out
    assert "training:3f2a9c1e (training.fraud@0)" in out and "ts in [2024-05-01T00:00:00Z" in out
    code, out, _ = run(capsys, served, *base, *DAY2)
    assert code == 0 and "status: drift" in out and "psi" in out  # no --fail-on: informational
    code, out, _ = run(capsys, served, *base, *DAY2, "--fail-on", "drift")
    assert code == 1 and "status: drift" in out
    code, _, _ = run(capsys, served, *base, *DAY2, "--fail-on", "warn")
    assert code == 1
    code, _, _ = run(capsys, served, *base, *DAY2, "--columns", "age", "--fail-on", "warn")
    assert code == 0
    # Thresholds from the command line can silence what defaults flag.
    off = ["-t", "psi=off", "-t", "ks=off", "-t", "js=off", "--threshold", "cardinality=off"]
    code, out, _ = run(capsys, served, *base, *DAY2, *off, "--fail-on", "warn")
    assert code == 0 and "status: ok" in out


def test_drift_json_and_html(served: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "reports" / "drift.html"
    code, out, _ = run(capsys, served, "drift", "-r", "training:fraud", "-c", "logs.serving_fraud", *DAY2,
                       "--json", "--out", str(html), "--columns", "amount,country", "-t", "psi=0.3:0.5")
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "drift" and [f["name"] for f in report["features"]] == ["amount", "country"]
    assert report["thresholds"]["psi"] == {"warn": 0.3, "drift": 0.5} and report["report_id"]
    assert report["location"] == str(html.resolve()) and html.read_text().startswith("<!DOCTYPE html>")
    assert report["features"][0]["metrics"]["ks"] > 0.2 and report["current"]["window"].startswith("ts in [")


def test_reports_listing(served: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, served, "reports")
    assert code == 0 and "no drift reports" in out
    run(capsys, served, "drift", "-r", "training:fraud", "-c", "logs.serving_fraud", *DAY1)
    run(capsys, served, "drift", "-r", "training:fraud", "-c", "logs.serving_fraud", *DAY2)
    run(capsys, served, "drift", "-r", "logs.serving_fraud@0", "-c", "training.fraud", "--columns", "amount")
    code, out, _ = run(capsys, served, "reports", "--json")
    listed = json.loads(out)
    assert code == 0 and [r["status"] for r in listed] == ["ok", "drift", "ok"]
    assert [r["dataset"] for r in listed] == ["training.fraud", "logs.serving_fraud", "logs.serving_fraud"]
    code, out, _ = run(capsys, served, "reports", "logs.serving_fraud", "--status", "drift", "--json")
    (only,) = json.loads(out)
    assert only["summary"]["drift"] == ["amount", "country", "is_new"] and only["version"] == 1
    code, out, _ = run(capsys, served, "reports", "logs.serving_fraud")
    assert code == 0 and "logs.serving_fraud" in out and "amount, country, is_new" in out


@pytest.mark.parametrize(("args", "message"), [
    (["drift", "-r", "gold.nope", "-c", "logs.serving_fraud"], "table gold.nope does not exist"),
    (["drift", "-r", "training:fraud", "-c", "logs.serving_fraud", "-t", "psi=lots"], "'lots' is not a number"),
    (["drift", "-r", "training:fraud", "-c", "logs.serving_fraud", "--fail-on", "always"], "use drift or warn"),
    (["drift", "-r", "training:fraud", "-c", "logs.serving_fraud", "--columns", "nope"], "nope not in the reference"),
    (["drift", "-r", "training:fraud", "-c", "logs.serving_fraud", "--since", "2030-01-01"], "has no rows"),
    (["reports", "gold.nope"], "gold.nope"),
    (["reports", "--status", "bad"], "use ok, warn or drift"),
])
def test_mistakes_print_one_line_and_exit_1(served: Lake, capsys: pytest.CaptureFixture[str], args: list[str],
                                            message: str) -> None:
    code, out, err = run(capsys, served, *args)
    assert code == 1 and message in err and "Traceback" not in err + out


def test_on_drift_hook_runs_a_command_or_posts_to_a_url(served: Lake, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The continuous-training hook: only on drift; a command gets the report on stdin, a URL a POST;
    a hook that fails makes the command fail."""
    import http.server
    import sys
    import threading

    received: list[dict[str, object]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202 if self.path == "/retrain" else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    base = ["drift", "--reference", "training:fraud", "--current", "logs.serving_fraud"]
    try:
        code, out, _ = run(capsys, served, *base, *DAY1, "--on-drift", url + "/retrain")
        assert code == 0 and received == [] and "hook" not in out  # no drift: no hook
        code, out, _ = run(capsys, served, *base, *DAY2, "--on-drift", url + "/retrain", "--retrain", "churn")
        assert code == 0 and "on-drift hook ran" in out and "HTTP 202" in out
        (payload,) = received
        assert payload["status"] == "drift" and payload["training_set"] == "churn"
        assert payload["drifted"] == ["amount", "country", "is_new"] and payload["report_id"]
        code, out, _ = run(capsys, served, *base, *DAY2, "--on-drift", url + "/broken", "--json")
        assert code == 1 and json.loads(out)["hook"]["ok"] is False and json.loads(out)["hook"]["detail"] == "HTTP 500"
    finally:
        server.shutdown()
    script = tmp_path / "retrain.py"
    seen = tmp_path / "seen.json"
    script.write_text(f"import os, sys, json; data = json.load(sys.stdin); data['env'] = os.environ['LAKE_DRIFT_STATUS']; "
                      f"open({str(seen)!r}, 'w').write(json.dumps(data))")
    code, out, _ = run(capsys, served, *base, *DAY2, "--on-drift", f"{sys.executable} {script}")
    assert code == 0 and "on-drift hook ran" in out
    seen_payload = json.loads(seen.read_text())
    assert seen_payload["env"] == "drift" and seen_payload["reference"]["label"].startswith("training:")
    code, out, _ = run(capsys, served, *base, *DAY2, "--on-drift", f"{sys.executable} -c 'raise SystemExit(3)'")
    assert code == 1 and "on-drift hook failed" in out
