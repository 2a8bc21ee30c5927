"""``python -m stream_app`` runs the command-line interface (see ``--help``)."""

from stream_app.cli import main

raise SystemExit(main())
