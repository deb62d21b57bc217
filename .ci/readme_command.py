"""Print the Nth command line of the first fenced block under README.md's Quickstart heading."""

import re
import sys
from pathlib import Path

text = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
section = re.split(r"^#+ .*quickstart.*$", text, maxsplit=1, flags=re.I | re.M)[1]
block = re.search(r"```[^\n]*\n(.*?)```", section, flags=re.S).group(1)
lines = [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]
print(lines[int(sys.argv[1]) - 1])
