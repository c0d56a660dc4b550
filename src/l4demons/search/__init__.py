"""Batched Monte Carlo tree search over the network's priors and values.

- :mod:`.batch`: the leaf batch many searches write into, and
  :func:`run_step`, the one collect-evaluate-deliver step everybody uses.
- :mod:`.evaluator`: the network call for a batch.
- :mod:`.tree`: nodes, leaves, terminal detection and value backup, shared
  by both Python searches.
- :mod:`.gumbel`: Gumbel AlphaZero for self-play (few simulations, improved
  policy targets); its sequential-halving rounds visit many root actions at
  once, so one search hands many leaves to each network call.
- :mod:`.puct`: PUCT with virtual loss for play, under a node or time budget.
- :mod:`.noise`: the random numbers both implementations draw the same way.
- :mod:`.compiled`: the same two searches from the compiled core
  (:mod:`l4demons.core`); :mod:`.play`: the bot's search, compiled or not.

The Python searches are the reference the compiled core is tested against,
and the fallback where it is not built. A search never calls the network
itself: it writes the leaves it wants evaluated into the batch, somebody
evaluates the batch (for one game or for a thousand games at once) and hands
the answers back. :func:`run_searches` drives Python searches to the end.
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
