"""`python -m rootseg.check`: the command lives in `rootseg.cli.check`."""

from rootseg.cli.check import entry

if __name__ == "__main__":
    entry()
