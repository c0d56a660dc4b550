"""`python -m l4demons ...` (also what `torchrun -m l4demons` runs)."""

from l4demons.cli import main

raise SystemExit(main())
