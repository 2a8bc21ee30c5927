"""``python -m tools`` runs the developer commands (see ``--help``)."""

from tools.cli import main

raise SystemExit(main())
