import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ACASXU = Path(__file__).resolve().parents[2] / "shared" / "data" / "acasxu"


@pytest.fixture(scope="session")
def acasxu_dir():
    if not ACASXU.is_dir():
        pytest.skip(f"ACAS Xu data not found at {ACASXU}")
    return ACASXU
