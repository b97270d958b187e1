import warnings

import dagster as dg

# BackfillPolicy.single_run is what batches many account partitions into one run; it is marked beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
# Daily checks carry the day's partition (else each day's planned check stays "skipped"); it is a preview.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*", category=dg.PreviewWarning)
