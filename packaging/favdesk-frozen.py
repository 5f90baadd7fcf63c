"""The frozen app's entry point (packaging/favdesk.spec): the same `favdesk.cli:main` as the
wheel's `favdesk` and `favdesk-cli` scripts. It lives outside the package on purpose: PyInstaller
puts the script's folder on its search path, and `favdesk/queue.py` there would shadow `queue`."""

from favdesk.cli import main

raise SystemExit(main())
