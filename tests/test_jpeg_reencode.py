"""scripts/jpeg_reencode.py: the archive it writes holds the same images, by the same names,
coarser only in their quantisation."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

REPOSITORY = Path(__file__).resolve().parent.parent
NAMES = ("train/cat/0000.jpg", "train/dog/0000.jpg", "test/cat/0000.jpg")


def _archive(path: Path) -> None:
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in NAMES:
            encoded = io.BytesIO()
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(encoded, "JPEG", quality=75, subsampling=2)
            info = tarfile.TarInfo(name)
            info.size = encoded.tell()
            encoded.seek(0)
            tar.addfile(info, encoded)


def _images(path: Path) -> dict[str, JpegImagePlugin.JpegImageFile]:
    with tarfile.open(path) as tar:
        found: dict[str, JpegImagePlugin.JpegImageFile] = {}
        for member in tar:
            file = tar.extractfile(member)
            assert file is not None
            image = Image.open(io.BytesIO(file.read()))
            assert isinstance(image, JpegImagePlugin.JpegImageFile)
            image.load()
            found[member.name] = image
        return found


def test_reencoding_keeps_names_and_subsampling_and_coarsens_the_quantisation(
    tmp_path: Path,
) -> None:
    source, output = tmp_path / "q75.tar.gz", tmp_path / "q25.tar.gz"
    _archive(source)
    done = subprocess.run(
        [sys.executable, str(REPOSITORY / "scripts/jpeg_reencode.py"), str(source), "25",
         str(output)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "3 images at quality 25" in done.stdout
    before, after = _images(source), _images(output)
    assert sorted(after) == sorted(NAMES)
    for name in NAMES:
        assert after[name].size == (32, 32)
        assert JpegImagePlugin.get_sampling(after[name]) == 2  # 4:2:0, as the copy has
        # Quality 25's luminance steps are four times quality 75's (within rounding).
        old = np.array(before[name].quantization[0])
        new = np.array(after[name].quantization[0])
        assert np.allclose(new, 4 * old, rtol=0.2, atol=2)
        difference = np.abs(np.asarray(after[name], int) - np.asarray(before[name], int))
        assert 0 < difference.mean() < 64  # the same picture, coarser
