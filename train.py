"""Train a genre classifier: ``python train.py model=bilstm optim=rmsprop`` (see mgc/train.py)."""

from mgc.train import main

main()
