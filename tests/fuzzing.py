"""What the fuzz tests share: byte mutations and a run that must end soon, small, and
with no exception other than a PolyreluError."""

import signal
import time
import tracemalloc
from contextlib import contextmanager

from hypothesis import strategies as st

from polyrelu.errors import PolyreluError

#: One mutation of a byte string: ("flip", position, byte), ("cut", position),
#: ("insert", position, bytes), ("repeat", start, length).
_POSITION = st.integers(0, 2 ** 31)
MUTATION = st.one_of(
    st.tuples(st.just("flip"), _POSITION, st.integers(0, 255)),
    st.tuples(st.just("cut"), _POSITION),
    st.tuples(st.just("insert"), _POSITION, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("repeat"), _POSITION, st.integers(1, 64)),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=8)


def mutate(data, mutations):
    """``data`` (bytes) with the ``mutations`` applied in turn, positions modulo its length."""
    data = bytearray(data)
    for kind, position, *rest in mutations:
        at = position % max(len(data), 1)
        if kind == "flip" and data:
            data[at] = rest[0]
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = rest[0]
        elif kind == "repeat":
            data[at:at] = data[at:at + rest[0]]
    return bytes(data)


class Hang(Exception):
    """Raised in the fuzzed call when it runs past its time."""


@contextmanager
def bounded(seconds=20.0, megabytes=300):
    """Run the body with a wall-clock alarm and check its peak Python/numpy memory.

    Exceptions other than :class:`PolyreluError` propagate (the fuzz test fails);
    a run past ``seconds`` raises :class:`Hang`, one past ``megabytes`` fails.
    """
    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    except PolyreluError as err:
        assert "\n" not in str(err), f"a multi-line message: {str(err)[:300]!r}"
        assert len(str(err)) < 600, f"a long message: {str(err)[:300]!r}..."
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < megabytes * 2 ** 20, f"peak memory {peak / 2 ** 20:.0f} MB"
    assert time.perf_counter() - start < seconds
