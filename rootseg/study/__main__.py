"""`python -m rootseg.study`: the command lives in `rootseg.cli.study`."""

from rootseg.cli.study import entry

if __name__ == "__main__":
    entry()
