"""The HTTP front door: the ChessHacks bot-server contract, /health and a web board.

- :mod:`.app`: ``create_app(settings)``, the FastAPI app and its routes.
- :mod:`.schemas`: request and response bodies (the contract's field names).
- :mod:`.model_store`: loads the weights in a background thread (loading/ready/failed).
- :mod:`.weights`: which weights to play: a local file, the hub's head, offline its cached commit
  (shared with UCI and lichess-bot).
- :mod:`.body`: reading a request body under a size and time limit, as it streams.
- :mod:`.positions`: the position a PGN ends in, within caps, refusing what cannot be played on.
- :mod:`.settings`: ``ServeSettings``, read from flags and the environment.

``serve.py`` at the repository root is the thin door that runs it under uvicorn. The contract,
its limits and the bind address's risk: ``docs/serving.md``.
"""

from l4demons.server.app import create_app
from l4demons.server.model_store import ModelState, ModelStatus, ModelStore
from l4demons.server.settings import ServeSettings

__all__ = ["ModelState", "ModelStatus", "ModelStore", "ServeSettings", "create_app"]
