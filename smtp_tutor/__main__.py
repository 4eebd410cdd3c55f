"""`python -m smtp_tutor` runs the same CLI as the `smtp-tutor` script."""

from smtp_tutor.cli import main

raise SystemExit(main())
