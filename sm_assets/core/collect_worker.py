"""Entry point of a collector worker process: `python -m sm_assets.core.collect_worker`.

A module of its own so the snapshots it pickles name `sm_assets.core.collect` classes, not `__main__`.
"""

import logging
import os
import sys

from sm_assets.core.collect import run_worker

if __name__ == "__main__":
    # Results go to the original stdout; anything else printed goes to stderr with the logs.
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s collect-worker %(levelname)s %(message)s")
    run_worker(sys.stdin.buffer, results)
    results.close()
