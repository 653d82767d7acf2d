"""Spark applications of the platform. ``transforms`` holds DataFrame -> DataFrame functions, kept apart from
``readStream``/``writeStream`` so they are tested on small batch DataFrames."""
