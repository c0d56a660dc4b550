"""Batched Monte Carlo tree search over the network's priors and values.

- :mod:`.tree`: nodes, leaves, terminal detection and value backup, shared
  by both searches.
- :mod:`.evaluator`: one network call for many leaves.
- :mod:`.gumbel`: Gumbel AlphaZero for self-play (few simulations, improved
  policy targets); its sequential-halving rounds visit many root actions at
  once, so one search hands many leaves to each network call.
- :mod:`.puct`: PUCT with virtual loss for play, under a node or time budget.

A search never calls the network itself: ``collect()`` returns leaves,
somebody evaluates them (for one game or for a hundred games at once) and
hands the results back with ``deliver()``. :func:`run_searches` is that
loop for the common case.
"""

from l4demons.search.batch import BatchBuffers, LeafBatch, run_searches, run_step
from l4demons.search.evaluator import Evaluator
from l4demons.search.gumbel import GumbelConfig, GumbelSearch
from l4demons.search.puct import PuctConfig, PuctSearch
from l4demons.search.tree import Leaf, Node, SearchResult

__all__ = [
    "BatchBuffers",
    "LeafBatch",
    "Evaluator",
    "GumbelConfig",
    "GumbelSearch",
    "Leaf",
    "Node",
    "PuctConfig",
    "PuctSearch",
    "SearchResult",
    "run_searches",
    "run_step",
]
