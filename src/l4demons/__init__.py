"""L4Demons: a chess bot that teaches itself by self-play.

Layers import downward only::

    encoding  <-  network  <-  search  <-  selfplay / bot
    lifecycle drives selfplay, learner, elo and hub
    cli, serve.py and train_modal.py are thin doors onto them
"""

__version__ = "0.1.0"
