"""Model families. Each module implements :class:`ml.predictor.Predictor`; see ``ml.predictor.FAMILIES``."""
