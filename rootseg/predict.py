"""`python -m rootseg.predict`: the command lives in `rootseg.cli.predict`."""

from rootseg.cli.predict import entry

if __name__ == "__main__":
    entry()
