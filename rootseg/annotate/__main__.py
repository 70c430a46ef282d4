"""`python -m rootseg.annotate`: the command lives in `rootseg.cli.annotate`."""

from rootseg.cli.annotate import entry

if __name__ == "__main__":
    entry()
