"""`python -m rootseg.synthesize`: the command lives in `rootseg.cli.synthesize`."""

from rootseg.cli.synthesize import entry

if __name__ == "__main__":
    entry()
