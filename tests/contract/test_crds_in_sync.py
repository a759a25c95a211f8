"""crds/ and the chart's copy are generated from the pydantic models; fail when they drift."""

from __future__ import annotations

import yaml

from mlops_operator.api import crdgen


def test_every_crd_file_matches_the_models() -> None:
    expected = crdgen.rendered_files()
    for out_dir in crdgen.OUTPUT_DIRS:
        for name, text in expected.items():
            path = out_dir / name
            assert path.exists(), f"{path} missing: run `make crds`"
            assert yaml.safe_load(path.read_text()) == yaml.safe_load(text), f"{path} is stale: run `make crds`"
            assert path.read_text() == text, f"{path} formatting differs: run `make crds`"
    assert crdgen.stale_files() == []


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(crdgen, "OUTPUT_DIRS", (tmp_path,))
    crdgen.write()
    assert crdgen.main(["--check"]) == 0
    target = tmp_path / "models.mlops.dev.yaml"
    target.write_text(target.read_text().replace("- mdl", "- mdlx", 1))
    assert crdgen.main(["--check"]) == 1
