"""scripts/prepare_data.py end to end on the fixture files (in-process, no subprocess start-up)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prepare_data_script", ROOT / "scripts" / "prepare_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dataset_command_writes_parquet_manifest_and_validates(cli: ModuleType, tmp_path: Path, capsys) -> None:
    out = tmp_path / "numina.parquet"
    argv = ["dataset", "numina_math", "--input", str(FIXTURES / "numina_sample.jsonl"), "--output", str(out)]
    assert cli.main([*argv, "--num-subsets", "2", "--id-column", "id"]) == 0
    manifest = json.loads((tmp_path / "numina.manifest.json").read_text())
    assert manifest["num_rows"] == 10 and manifest["subsets"]["sizes"] == [5, 5]
    assert cli.main(["validate", str(out)]) == 0
    assert f"{out}: OK, 10 rows" in capsys.readouterr().out


def test_bad_rows_exit_non_zero_and_name_the_report(cli: ModuleType, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bad.parquet"
    argv = ["dataset", "numina_math", "--input", str(FIXTURES / "numina_bad_rows.jsonl"), "--output", str(out)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "is empty" in err and "bad.bad_rows.jsonl" in err and not out.exists()
    assert cli.main([*argv, "--allow-bad-rows"]) == 0
    assert "EXCLUDED" in capsys.readouterr().out and out.exists()


def test_eval_command_prepares_local_benchmark_files(cli: ModuleType, tmp_path: Path) -> None:
    argv = ["eval", "--benchmarks", "gsm8k,olympiadbench", "--output-dir", str(tmp_path)]
    argv += ["--input", f"gsm8k={FIXTURES / 'gsm8k_sample.jsonl'}"]
    argv += ["--input", f"olympiadbench={FIXTURES / 'eval_qa_sample.jsonl'}"]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == ["gsm8k.parquet", "olympiadbench.parquet"]
    manifest = json.loads((tmp_path / "gsm8k.manifest.json").read_text())
    assert (manifest["data_source"], manifest["split"]) == ("cures-gsm8k", "test")


def test_template_flags_change_the_messages(cli: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "m.parquet"
    argv = ["dataset", "math", "--input", str(FIXTURES / "math_sample.jsonl"), "--output", str(out)]
    assert cli.main([*argv, "--no-system-prompt", "--user-suffix", "Box it."]) == 0
    from cures_verl.data import read_prepared

    prompt = read_prepared(out)[0]["prompt"]
    assert prompt == [{"role": "user", "content": "What is $1+1$? Box it."}]


def test_unknown_custom_dataset_needs_format_and_split(cli: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--format and --split"):
        cli.main(
            ["dataset", "mine", "--input", str(FIXTURES / "math_sample.jsonl"), "--output", str(tmp_path / "x.parquet")]
        )
