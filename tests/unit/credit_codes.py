"""Independent check of tests/unit/data/credit_codes.txt: recomputes every
sample's verdict by GB 32100-2015 (a second implementation, apart from the
C one in records/credit_code.c), so the samples the C unit test relies on
are known to be right. Exit status 0 when every line agrees."""

import sys
from pathlib import Path

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [3 ** i % 31 for i in range(17)]


def valid(code):
    if len(code) != 18 or any(ch not in CHARSET for ch in code):
        return False
    if not code[2:8].isdigit():
        return False
    total = sum(CHARSET.index(ch) * w for ch, w in zip(code[:17], WEIGHTS))
    return CHARSET[(31 - total % 31) % 31] == code[17]


def main():
    path = Path(__file__).with_name("data") / "credit_codes.txt"
    bad = 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        verdict, code = line.split(" ", 1)
        want = verdict == "valid"
        if valid(code) != want:
            print(f"line {n}: {code!r} is {'not ' if want else ''}valid by GB 32100-2015")
            bad += 1
    assert WEIGHTS[:5] == [1, 3, 9, 27, 19] and WEIGHTS[-1] == 28
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
