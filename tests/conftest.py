import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# The property-based tests draw the same examples on every run (a red run can be
# reproduced, and a green one does not depend on luck); to search new examples, as a
# fuzzing campaign: pytest --hypothesis-profile=explore (add --hypothesis-seed=N to repeat).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")

ACASXU = Path(__file__).resolve().parents[2] / "shared" / "data" / "acasxu"


@pytest.fixture(scope="session")
def acasxu_dir():
    if not ACASXU.is_dir():
        pytest.skip(f"ACAS Xu data not found at {ACASXU}")
    return ACASXU
