"""The training lifecycle: ``l4demons train`` (see :mod:`.trainer`)."""

from l4demons.lifecycle.common import INITIAL_MESSAGE, TrainError
from l4demons.lifecycle.config import TrainConfig
from l4demons.lifecycle.trainer import Trainer

__all__ = ["INITIAL_MESSAGE", "TrainConfig", "TrainError", "Trainer"]
