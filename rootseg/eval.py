"""`python -m rootseg.eval`: the command lives in `rootseg.cli.evaluate`."""

from rootseg.cli.evaluate import entry

if __name__ == "__main__":
    entry()
