"""`python -m cxrneo` (and `torchrun ... -m cxrneo train ...`): the same CLI as the `cxrneo` command."""

from cxrneo.cli import app

app()
