"""Deadlines for tests of time limits that must not depend on the machine's speed."""

from polyrelu.deadline import Deadline


class ChecksDeadline(Deadline):
    """A deadline that expires after a number of checks: a state, not a clock."""

    def __init__(self, checks):
        super().__init__(None)
        self.seconds, self.left = 0, checks

    def expired(self):
        self.left -= 1
        return self.left < 0
