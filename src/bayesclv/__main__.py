"""``python -m bayesclv``: the command line (see :mod:`bayesclv.cli`)."""

from bayesclv.cli import main

if __name__ == "__main__":
    main()
