"""``python -m service.cli``: the `yuqing` command."""

from service.cli import main

main()
