"""The command line: ``python -m stream_app COMMAND`` (or ``leadstream COMMAND``).

``cli.py`` is the entry point and the long-running processes' commands; ``replay.py``
holds ``simulate`` and ``rules check``; ``erase.py`` holds ``erase``.
"""
