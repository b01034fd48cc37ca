"""Dataset loaders behind `supernet.data` (the public surface): one module per source format.

`base` holds the error and the loader contract, `splits` the split values, `augment` and
`batches` the on-tensor augmentation and the batch iterator; the others each read one format.
"""
