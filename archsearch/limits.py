"""Caps on every size a user can write, checked before anything is allocated.

A space file, a spec, a sweep file or a command-line option can ask for a size that would
hang archsearch or exhaust the machine's memory before any useful error (a stage of 50 million
blocks, a network of 10^18 parameters, a sweep of a million runs). Each such size is bounded
here, in one place, checked where the value is parsed, and named in the README beside the
feature it limits. The bounds sit far above any network of the seed papers (the deepest,
DeepMAD's ResNet space, has 16 blocks per stage; the widest blocks have a few thousand
channels) and below what a 24 GB machine can hold.
"""

from __future__ import annotations

MAX_TEXT_BYTES = 16 * 1024 * 1024
"""The largest space, spec or sweep file read (16 MiB; the built-in spaces are < 10 KiB)."""
MAX_TABLE_BYTES = 512 * 1024 * 1024
"""The largest CSV table read (512 MiB; NAS-Bench-201's with latencies is 3.6 MB)."""
MAX_YAML_NODES = 1_000_000
"""The most values a YAML document may hold once its aliases are expanded."""
MAX_YAML_DEPTH = 100
"""The deepest nesting of mappings and lists in a YAML document."""
MAX_DEPTH = 1_000
"""Blocks per stage (a space's depth choices, a spec's blocks and ``repeat``)."""
MAX_STAGES = 64
"""Stages per space or architecture."""
MAX_BRANCHES = 16
"""Streams a branched stage may run side by side (CrossViT: two)."""
MAX_BLOCKS = MAX_STAGES * MAX_DEPTH
"""Blocks of a whole architecture, every branch's included (64,000: what 64 stages of 1,000
blocks hold)."""
MAX_WIDTH = 65_536
"""Output channels of any block (a space's widths, a spec's ``out_channels``)."""
MAX_INT_PARAM = 1_000_000
"""Any integer block parameter without a tighter bound of its own (hidden widths, kernels)."""
MAX_CHOICES = 10_000
"""Values of one choice: a list, or a ``{min, max, step}`` range."""
MAX_BLOCK_OPTIONS = 100_000
"""Distinct parameter combinations of one block type in one slot (the product of its
parameters' numbers of choices): ``latency profile`` enumerates them."""
MAX_INPUT_ELEMENTS = 2**26
"""C x H x W of one input image (67 M values, 256 MiB in float32; 3x4096x4096 fits)."""
MAX_CLASSES = 1_000_000
"""Classes of a classifier."""
MAX_BUILD_PARAMS = 2_000_000_000
"""Parameters of a network archsearch builds as a torch module (8 GB in float32)."""
MAX_FORWARD_BYTES = 8 * 1024**3
"""Activation memory of one forward pass archsearch runs (timing, proxies, training):
``count(arch).activation_bytes`` times the batch."""
MAX_DATA_BYTES = 8 * 1024**3
"""A dataset held in memory (``--data``): images decompressed, at most 8 GiB; checked before
decompressing where the format declares sizes (npz), while reading elsewhere (gzip, images)."""
MAX_INT = 2**31 - 1
"""Trials, seeds and other counts stored as the databases' 32-bit INTEGER."""
MAX_BATCH = 10_000
"""Candidates per ask/tell round (``--batch-size``)."""
MAX_BUDGET = 10**18
"""A MAC or parameter budget (``1e18``; the databases store budgets as 64-bit integers)."""
MAX_SECONDS = 10**9
"""A time limit in seconds (about 31 years)."""
MAX_SWEEP_POINTS = 10_000
"""Runs one sweep file may define (the product of its grid's sizes times its run entries)."""
MAX_NAME = 255
"""Characters of a stored name (space, sweep, strategy)."""
MAX_METRIC_NAME = 64
"""Characters of a metric's name (a table's column), the databases' column width."""
MAX_EXPR_CHARS = 10_000
"""Characters of a ``--where`` or ``--constraint`` expression."""
MAX_EXPR_TERMS = 200
"""Comparisons in one expression (SQLite's parser refuses expressions nested 1000 deep)."""
MAX_FRONT_COMPARISONS = 20_000_000_000
"""Point comparisons a Pareto front over three or more objectives may take (about 20 s here):
a front of a million trials over objectives that never agree would otherwise take hours."""
