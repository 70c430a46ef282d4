"""`python -m rootseg.measure`: the command lives in `rootseg.cli.measure`."""

from rootseg.cli.measure import entry

if __name__ == "__main__":
    entry()
