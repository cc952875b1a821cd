import os
import sys

from preview.cli import main

try:
    code = main()
    sys.stdout.flush()
except BrokenPipeError:
    # `python -m preview | head`: the reader left; exit quietly as other CLI tools do.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
sys.exit(code)
