"""Entry point of a collector worker process: `python -P -m sm_assets.core.collect_worker`.

A module of its own so the snapshots it pickles name `sm_assets.core.collection` classes, not `__main__`.
"""

import os
import sys

if __name__ == "__main__":
    # Before any import that could print: results go to the original stdout, anything else to stderr.
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import logging
    import signal

    # The parent stops us (stdin EOF, then terminate): a terminal's Ctrl-C reaches the whole group, and a
    # traceback from every worker would bury the parent's one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from sm_assets.core.process_shards import run_worker, warm_up

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s collect-worker %(levelname)s %(message)s")
    warm_up()  # before the job arrives: a prestarted worker does this while its parent starts up
    run_worker(sys.stdin.buffer, results)
    results.close()
    sys.stderr.flush()
    # Skip interpreter shutdown: the parent-watchdog thread is blocked reading stdin, and finalization
    # would abort on that stream's lock. Everything the parent needs is sent and flushed.
    os._exit(0)
