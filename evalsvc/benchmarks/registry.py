"""The built-in datasets: MedSafetyBench pinned to one upstream commit with the sha256 of every file, plus the bundled samples.

Only names, paths and checksums live here (the registry is code); where the bytes are found is `locate.py`'s job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from evalsvc.errors import UserError

SAMPLES_DIR = Path(__file__).parent / "samples"


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the dataset root, the same as in the upstream repository
    sha256: str


@dataclass(frozen=True)
class RemoteDataset:
    """A public dataset fetched from a pinned GitHub commit (or a local mirror of it) and checked file by file."""

    name: str
    kind: str
    repo: str
    commit: str
    files: tuple[DataFile, ...]
    splits: dict[str, int]  # split -> item count
    default_split: str

    @property
    def version(self) -> str:
        return f"{self.name}@{self.commit[:7]}"

    def url(self, path: str, base_url: str = "https://raw.githubusercontent.com") -> str:
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{path}"

    def file(self, path: str) -> DataFile:
        return next(f for f in self.files if f.path == path)


@dataclass(frozen=True)
class BundledDataset:
    """A small sample evalsvc ships in the package (MedGuard / MedHarm formats; their real data is not public)."""

    name: str
    kind: str
    sample: Path

    default_split: ClassVar[str] = "sample"

    @property
    def splits(self) -> dict[str, int]:
        return {"sample": sum(1 for line in self.sample.read_text(encoding="utf-8").splitlines() if line.strip())}

    @property
    def version(self) -> str:
        return f"{self.name}@sha256:{hashlib.sha256(self.sample.read_bytes()).hexdigest()[:12]}"


MSB_COMMIT = "191aa7954b82458079425292730d6cb28a89565d"
PRINCIPLES = tuple(range(1, 10))  # category_k of the upstream files = AMA Principle of Medical Ethics k
MSB_SOURCES = ("gpt4", "llama2")
LLAMA2_ROWS = (59, 57, 31, 56, 50, 24, 61, 64, 48)  # per principle, same in test and train; gpt4 has 50 each
LLAMA3_ROWS = (7897, 8563, 8531, 7827, 9064, 8579, 8254, 7563, 8096)


def msb_csv(split: str, source: str, principle: int) -> str:
    return f"datasets/{split}/{source}/med_safety_demonstrations_category_{principle}.csv"


def msb_llama3_txt(principle: int) -> str:
    return f"datasets/med_harm_llama3/category_{principle}.txt"


# sha256 of each upstream file at MSB_COMMIT, by principle 1..9 (computed from the pinned copy).
_SHA256 = {
    ("test", "gpt4"): (
        "026f2fe4d38a8b04f91f23eb84bce4224fa1781120ca93636b93d445ca4392af",
        "821bf621fba655c86849efb59cea9a1abad5984186a0b6e121d378e32a8d91c2",
        "461f3ab94838c5f0b127771022a2e9d38f8c57e78f6e43d8a9b8670edf043294",
        "7d1ff42903d1636dae66e6af647c4405bcd3ff5c7d149ad33d23408d20b964ce",
        "0609d582e9864243706c32c90ee622493f697bda14b69dd9107b2776caeb6aed",
        "447dd9b868080642844c9d07d2a569b95c66d943729c7ad4310167c31f084409",
        "633687172a7dd4f86a805f4efcb88626d92391c724f4ba2f00c3bcb198f88bb1",
        "67a199a57ecd7845e722ac9c512c99ae2270f9b4418341f0efb1b5b0f98cb702",
        "ca743af7aa36ff3acee51188091ce02cabc6089409690d0c4ad2f7f2af02d777",
    ),
    ("test", "llama2"): (
        "dcf8c721446f06c02eb7024828d78e9213e313e3d7cef4e1505fb25129f412c1",
        "631d0ed8effa57fcf9e0575f87e3a2692d059894521dc8c01f16c6b821c3b450",
        "36174f0f72e1d4a97dd66d957654418b48c2ad487420ef0d0e22dbdf832599ac",
        "e951b651c6b9ff52d893f592b6229e15204861cf5cdd6368da30e5a72fb1b0ac",
        "46043160bc5c6b2f4a51c2a80586a5edb5d4e9b167093a99a71f3cd76fe9230b",
        "80a1278d777a673888f5219446e9ecaf6e066040d8f590524187f8f72cb04eff",
        "9685e91571cc066dc7e04be32dede4ed798a513d69b8a1cca0006eea5e5f5bba",
        "7ccaf135d5d6f20273dba33bad7c0bb23bc30f8e275d68e7d8e368f9a9b09865",
        "ffbdcd8dfed20cea473414f38eda8fae77b58492579a29f23f5372d08052500d",
    ),
    ("train", "gpt4"): (
        "d1025f2875c559939650ae65e29e70e5ca55f946077218b09605a1b2d0f47efa",
        "e78707bb0c159915231b2ae80d7abf07ee97d14ef1c7fba2112f4aa71e2623f6",
        "1c8bbc44a62e8de21e700a0d0e09fc47e5b0422f501500c47320b72d2add38d7",
        "217a60ced26dbb31955404dfd50aedde2e895991330d5aa96787cb4e9564a99b",
        "9ef7fb0182c4a246ff8b2a5e9451e5b3d4732028bdc84b952338c5f3ec69c831",
        "200906b2336b11b2afae8b00ea5506acd5eb58bc01139d17702e1af8b5099225",
        "788f49cc7607ce9ff01fecb09875daa59aa68fcc460452d04c443c273c6f3208",
        "c7e8573320a2efc9d2304aa7e5e245591637e55d30b28594fa1b0774c1591e5e",
        "0504bfae7771a092b3d129b764adcb8af410bc219ecbb7418b357b2108cb0b99",
    ),
    ("train", "llama2"): (
        "afbff404f7cc8cc210efc0c7000145411d5a596436bbc345f6e591a03b19208c",
        "a089d15409a5d9dfaff4840f923b367acffd41a6aeb6eece8390b000f2d553a3",
        "56db009665f9dc64d2bac6ac9c1d95b4713405e293c791575342c454c3f7e5a5",
        "6e7a126d6a06e192993c9bb5e2099b6f01fb871b033def6559025d150dcca071",
        "b59209ec8b5a52bde6c5d689b8d50a5fcac4050bf1394f772e533b8c33d7f925",
        "8f5b2746c6b12af7ea46855d8946c82bc4dda396557540dcf8d8c0e1ca0a7ba5",
        "d25e10a854f335660be91f10f2ed3cac922d0e5377f112dc26e31dad0fa450d0",
        "b5985b8c4db39d1628cc7d58583ab9d8bd83c7ced2207bd94df1a01a0976d274",
        "cfd79ba4a424ba9d40ad49169cf85a248935e2e8384d760e895280c611f52ca0",
    ),
    ("llama3", "llama3"): (
        "4c8e936a84cbd86a3a18a7329558f0fca417825fd418895ccb48df8d01ab1ffb",
        "6b09b0bb835ca6e4ad73d9c763ae9a796effd5b0878b11d21893a349a29a2e75",
        "cd9042e5ac373fa3c43f183db138b3a154e8b41c8eeaa5f3685005d8ae66f0ff",
        "2c317713777083431e1f16c46393b3d573da6da1d6aed6a10e994196fdc4c58e",
        "b01bd616fe963b2f835a9e4e8cf554db83b70ab3ce86ac09bf82f1e586854a29",
        "3458936788152d87d837ae745587b121ccbba6db80029ddd0d75b51c6e91c4e6",
        "940198b90aa6043a06f0aa65801dbd769f6bcaec1768d926fba029bc1ea102b7",
        "fd170159127aea27d6277729e2ffc28aa079d9d4a9798e861b8ab92bf15c5f84",
        "e0713dc130389ee45e880bfd6733da46548e92b4dcaa64b956ecd2d3c004d584",
    ),
}


def _msb_files() -> tuple[DataFile, ...]:
    files = []
    for (split, source), digests in _SHA256.items():
        for principle, digest in zip(PRINCIPLES, digests, strict=True):
            path = msb_llama3_txt(principle) if split == "llama3" else msb_csv(split, source, principle)
            files.append(DataFile(path, digest))
    return tuple(files)


def split_files(split: str) -> list[tuple[str, str, int]]:
    """(path, source, principle) of every file a MedSafetyBench split reads, in item order."""
    if split == "llama3":
        return [(msb_llama3_txt(p), "llama3", p) for p in PRINCIPLES]
    return [(msb_csv(split, s, p), s, p) for s in MSB_SOURCES for p in PRINCIPLES]


MEDSAFETYBENCH = RemoteDataset(
    name="medsafetybench",
    kind="harm",
    repo="AI4LIFE-GROUP/med-safety-bench",
    commit=MSB_COMMIT,
    files=_msb_files(),
    splits={"test": 50 * 9 + sum(LLAMA2_ROWS), "train": 50 * 9 + sum(LLAMA2_ROWS), "llama3": sum(LLAMA3_ROWS)},
    default_split="test",
)
MEDGUARD = BundledDataset("medguard", "mcq", SAMPLES_DIR / "medguard_sample.jsonl")
MEDHARM = BundledDataset("medharm", "high_risk", SAMPLES_DIR / "medharm_sample.jsonl")

DATASETS: dict[str, RemoteDataset | BundledDataset] = {d.name: d for d in (MEDSAFETYBENCH, MEDGUARD, MEDHARM)}


def get_dataset(name: str) -> RemoteDataset | BundledDataset:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return DATASETS[name]
