from spark_apps.ingest.cli import cli

if __name__ == "__main__":
    cli()
