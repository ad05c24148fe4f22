"""The dataset registry: the pinned commit, the 45 upstream files and their checksums, the bundled samples."""

from __future__ import annotations

import hashlib

import pytest

from evalsvc.benchmarks.registry import DATASETS, MEDGUARD, MEDHARM, MEDSAFETYBENCH, get_dataset, split_files
from evalsvc.errors import UserError


def test_medsafetybench_is_pinned_with_every_file():
    ds = MEDSAFETYBENCH
    assert ds.commit == "191aa7954b82458079425292730d6cb28a89565d"
    assert ds.version == "medsafetybench@191aa79"
    paths = [f.path for f in ds.files]
    assert len(paths) == len(set(paths)) == 2 * 2 * 9 + 9
    assert "datasets/train/llama2/med_safety_demonstrations_category_6.csv" in paths
    assert "datasets/med_harm_llama3/category_9.txt" in paths
    assert all(len(f.sha256) == 64 and int(f.sha256, 16) >= 0 for f in ds.files)


def test_checksums_match_the_shared_copy(shared_msb):
    for f in MEDSAFETYBENCH.files:
        assert hashlib.sha256((shared_msb / f.path).read_bytes()).hexdigest() == f.sha256, f.path


def test_download_url_is_the_raw_file_at_the_commit():
    url = MEDSAFETYBENCH.url("datasets/test/gpt4/med_safety_demonstrations_category_1.csv")
    assert url == (
        "https://raw.githubusercontent.com/AI4LIFE-GROUP/med-safety-bench/"
        "191aa7954b82458079425292730d6cb28a89565d/datasets/test/gpt4/med_safety_demonstrations_category_1.csv"
    )


def test_split_files_cover_the_registry_once():
    listed = [p for s in ("test", "train", "llama3") for p, _, _ in split_files(s)]
    assert sorted(listed) == sorted(f.path for f in MEDSAFETYBENCH.files)


def test_splits_and_defaults():
    assert MEDSAFETYBENCH.splits == {"test": 900, "train": 900, "llama3": 74_374}
    assert MEDSAFETYBENCH.default_split == "test"
    assert MEDGUARD.splits == {"sample": 20} and MEDHARM.splits == {"sample": 20}
    assert MEDGUARD.default_split == MEDHARM.default_split == "sample"
    assert MEDGUARD.version.startswith("medguard@sha256:")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UserError, match="medsafetybench, medguard, medharm"):
        get_dataset("medqa")
    assert set(DATASETS) == {"medsafetybench", "medguard", "medharm"}
