"""Model families: ``classical`` (a module), ``rnn`` and ``transformer`` (packages), each implementing
:class:`ml.predictor.Predictor` (see ``ml.predictor.FAMILIES``); :mod:`.checkpoints` is the neural families'
one checkpoint/resume mechanism. Nothing here imports :mod:`ml.settings` or :mod:`ml.training`."""
