"""The notebooks tell the whole story on the embedded defaults; running them here keeps them from rotting."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.spark
@pytest.mark.slow
def test_notebooks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each notebook runs top to bottom (its own asserts included) on one fresh lake."""
    assert len(NOTEBOOKS) >= 3
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "lakehouse"))
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT)}})
        client.execute()
        outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], path.name
        assert outputs, f"{path.name} produced no output"
