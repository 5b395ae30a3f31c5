"""lighthouse-operator as the tests run it, plus one test-only fault: SIGUSR1 blocks the main thread (the operator's
event loop) for $LIGHTHOUSE_TEST_STALL_SECONDS, as a burst of CPU-bound work would (a new leader decoding its first
LISTs of ~20,000 children). Nothing of this is in the operator's own code."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType

from lighthouse_operator.__main__ import main


def stall(signum: int, frame: FrameType | None) -> None:
    print(f"Stalling the main thread seconds={os.environ['LIGHTHOUSE_TEST_STALL_SECONDS']}", flush=True)
    time.sleep(float(os.environ["LIGHTHOUSE_TEST_STALL_SECONDS"]))  # a Python handler runs on the main thread
    print("Stall over", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, stall)
    sys.exit(main())
