import warnings

import dagster as dg

# BackfillPolicy.single_run is what batches many account partitions into one run; it is marked beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
