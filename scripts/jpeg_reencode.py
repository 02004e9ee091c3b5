"""The CIFAR-10 JPEG archive re-encoded at a lower quality, for measuring what the copy's own
compression costs (docs/benchmarks.md, "What the JPEG copy costs").

    .venv/bin/python scripts/jpeg_reencode.py ../shared/datasets/cifar10-jpeg.tar.gz 50 \
        /tmp/cifar10-q50.tar.gz

The copy is JPEG at quality 75 with 4:2:0 chroma, and the lossless images are not to be had
here, so its cost cannot be measured directly. Coarser encodings of the same images can:
accuracy at quality 50 and 25 (quantisation steps two and four times quality 75's) traces the
cost of a step, and so what quality 75's own step costs. Each image is decoded and encoded
again with Pillow at ``quality``, same subsampling, into an archive of the same layout
(``train/<class>/NNNN.jpg``, ``test/...``) that ``CIFARLAB_CIFAR10_PATH`` takes.
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from PIL import Image

SUBSAMPLING_420 = 2
"""Pillow's code for 4:2:0 chroma, the copy's own: only the quantisation changes."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the JPEG archive (cifar10-jpeg.tar.gz)")
    parser.add_argument("quality", type=int, help="JPEG quality, 1-95")
    parser.add_argument("output", type=Path, help="the .tar.gz to write")
    args = parser.parse_args()
    count = 0
    with tarfile.open(args.source) as source, tarfile.open(args.output, "w:gz") as output:
        for member in source:
            if not (member.isfile() and member.name.endswith(".jpg")):
                continue
            file = source.extractfile(member)
            assert file is not None  # a regular file always has contents
            encoded = io.BytesIO()
            with Image.open(file) as image:
                image.convert("RGB").save(
                    encoded, "JPEG", quality=args.quality, subsampling=SUBSAMPLING_420
                )
            info = tarfile.TarInfo(member.name)
            info.size = encoded.tell()
            encoded.seek(0)
            output.addfile(info, encoded)
            count += 1
    print(f"{count} images at quality {args.quality}: {args.output}")


if __name__ == "__main__":
    main()
