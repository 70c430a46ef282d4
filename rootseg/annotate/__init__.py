"""Corrective annotation in the browser: `python -m rootseg.annotate project=DIR ckpt_path=CKPT`.

A local web app over a RootPainter project: the images most uncertain first, the model's segmentation
overlaid, brushes for root and background, RootSAM clicks, saving RootPainter RGBA annotations that
`data=rootpainter` trains on, and fine-tuning in the background. See README "Annotate".
"""
