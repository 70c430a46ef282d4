"""`python -m rootseg.compare`: the command lives in `rootseg.cli.compare`."""

from rootseg.cli.compare import entry

if __name__ == "__main__":
    entry()
