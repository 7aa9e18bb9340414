"""The reliability suites' bounds: each is sized by a count, with an environment variable
to run it longer (`STRATEXEC_HYPOTHESIS_EXAMPLES`, `STRATEXEC_FUZZ_EXAMPLES`,
`STRATEXEC_CRASH_KILLS`), never by a clock."""

from __future__ import annotations

from helpers import count_from_env
from hypothesis import HealthCheck, settings

# One profile for every property test here: as many examples as asked, no deadline (a
# loaded 2-core CI machine makes any per-example deadline flaky, and speed is `stratexec
# bench`'s to measure), and failing examples remembered in .hypothesis/ (git-ignored).
settings.register_profile(
    "stratexec",
    max_examples=count_from_env("STRATEXEC_HYPOTHESIS_EXAMPLES", 100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("stratexec")
