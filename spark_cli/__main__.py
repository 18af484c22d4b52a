"""``python -m spark_cli``: the same as the ``spark`` command."""

from spark_cli.main import main

main()
