"""Tar the files of a folder into as few tars of at most 15 MB as first-fit gives (the device tool
returns at most 8 files of 16 MiB each). Usage: python3 experiments/scripts/tar_in_bins.py SRC_DIR OUT_DIR PREFIX"""

import sys
import tarfile
from pathlib import Path

source, out, prefix = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
files = sorted(source.glob("*.pt"), key=lambda p: p.stat().st_size, reverse=True)
bins: list[list[Path]] = []
for path in files:
    for group in bins:
        if sum(p.stat().st_size for p in group) + path.stat().st_size < 15e6:
            group.append(path)
            break
    else:
        bins.append([path])
for number, group in enumerate(bins):
    with tarfile.open(out / f"{prefix}{number}.tar", "w") as archive:
        for path in group:
            archive.add(path, arcname=path.name)
print(f"{len(files)} files of {source} in {len(bins)} tars")
