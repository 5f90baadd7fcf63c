"""`python -m favdesk` runs the same entry point as the `favdesk` command."""

from favdesk.cli import main

raise SystemExit(main())
