"""Several copies of one model, trained side by side in one run and averaged at evaluation.

A deep ensemble (Lakshminarayanan et al. 2017): members that differ only in
their random initialisation make different errors on a data set as small as
GTZAN, and the mean of their predicted probabilities is usually more
accurate and better calibrated than any one of them. Members are trained
independently: the module gives each its own loss on the same batch (see
:meth:`mgc.module.GenreClassifier._loss`), because training the
averaged output as one model lets members lean on each other and loses the
diversity an ensemble is for. One run and one checkpoint hold them all, so
``mgc-predict``, ``make cv`` and the report need nothing new; the cost is one
member's training time per member.

With ``bagging``, members also differ in what they learn from: each genre's
training tracks are dealt to the members, and each member trains on the
tracks dealt to the others, as the fold models of a cross-validation do
(members trained on the same tracks tend to repeat each other's mistakes).
Each member then costs (members - 1) / members of a full-data member.
docs/transfer.md and docs/scratch_cnn.md have what it measured on the real dev clips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mgc.errors import MgcError


class Ensemble(nn.Module):
    """``members`` copies of ``member``, each from its own initialisation.

    In training mode the output is every member's logits, ``(members, batch,
    classes)``; in evaluation mode the log of the members' mean probability,
    ``(batch, classes)``: log-probabilities, which ``log_softmax`` leaves as
    they are, so everything downstream reads them like any model's logits.

    Parameters
    ----------
    input_shape : (channels, bins, frames)
        One segment.
    num_classes : int
        Number of genres.
    member : callable
        Builds one member from ``input_shape`` and ``num_classes`` (a model
        config with ``_partial_: true``; ``conf/model/ensemble.yaml``).
    members : int
        How many.
    bagging : bool
        Each member leaves out its share of every genre's training tracks
        (dealt by :meth:`mgc.datamodule.GenreDataModule.bags`; the module
        gives each member only the segments of the tracks it keeps). Needs
        at least two members.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        member: Callable[..., nn.Module],
        members: int = 2,
        bagging: bool = False,
    ):
        super().__init__()
        if int(members) < 1:
            raise MgcError(f"model.members={members}: an ensemble needs at least one member")
        if bagging and int(members) < 2:
            raise MgcError(
                f"model.bagging=true with model.members={members}: a lone member would leave out every "
                f"track; use model.members=5 (each leaves out a fifth) or model.bagging=false"
            )
        self.bagging = bool(bagging)
        self.members = nn.ModuleList(
            member(input_shape=input_shape, num_classes=num_classes) for _ in range(int(members))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x) for m in self.members])
        return logits if self.training else mean_log_probability(logits)


def mean_log_probability(logits: torch.Tensor) -> torch.Tensor:
    """The log of the mean over the first dimension (the members) of ``softmax(logits)``."""
    return torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=0) - math.log(len(logits))
