"""``python -m stream_app`` runs the command-line interface (see ``--help``)."""

from stream_app.commands.cli import main

raise SystemExit(main())
