"""Running archsearch on a Ray cluster: evaluation as Ray tasks or Tune trials, and sweeps.

Every worker writes to the run's database, which stays the system of record: a run (or a
sweep) is resumed from the database alone, never from Ray Tune's experiment folders.
"""

from archsearch.distributed.cluster import Cluster, connect, worker_url
from archsearch.distributed.tasks import RayTasks, evaluate_trials

__all__ = ["Cluster", "RayTasks", "connect", "evaluate_trials", "worker_url"]
