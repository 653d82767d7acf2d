"""Tweet sentiment platform: data, cleaning, model families, evaluation and packaging.

Everything here runs from the command line (``python -m ml --help``) and from Airflow tasks alike.
Heavy libraries (pandas, scikit-learn, torch, tensorflow) are imported inside functions so that importing
``ml`` stays cheap for DAG files.
"""

__version__ = "0.1.0"
