"""Which RootSAM weights train, and keeping the frozen ones out of checkpoints.

The frozen weights (the ~210 M-parameter Hiera-L encoder) are left out of every checkpoint when they come from
Meta's file (`model.net.ckpt_path`), which is reloaded when the model is rebuilt; a fingerprint stored in the
checkpoint proves it is the same file. With random weights (no ckpt_path) they are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rootseg.models.embedding_cache import encoder_fingerprint
from rootseg.models.freezing import freeze_rootsam
from rootseg.models.rootsam import RootSAM
from rootseg.tasks.checkpoints import CheckpointLoadError

log = logging.getLogger(__name__)


RANDOM_WEIGHTS_WARNING = (
    "model.net.ckpt_path is null: SAM 2.1 ({config}) has RANDOM weights. The pipeline runs, but accuracy "
    "means nothing. Give Meta's checkpoint: model.net.ckpt_path=/path/to/sam2.1_hiera_large.pt"
)


def apply_freezing(
    net: RootSAM, train_image_encoder: bool = False, extra_frozen: Sequence[str] = (), point_prompts: bool = True
) -> None:
    """RootSAM's one freezing policy (`rootseg.models.freezing.rootsam_patterns`), as the config feeds it."""
    summary = freeze_rootsam(net, bool(train_image_encoder), tuple(extra_frozen or ()), point_prompts)
    log.info("RootSAM freezing: %s", summary)
    if summary.trainable == 0:
        raise ValueError("model.extra_frozen_patterns leave no parameter trainable")


def save_frozen_setting(net: RootSAM, setting: bool | str) -> bool:
    """Whether checkpoints carry the frozen weights: only when Meta's file cannot give them back (auto)."""
    sam_ckpt = getattr(net, "ckpt_path", None)
    if sam_ckpt is None and net.encoder_frozen:
        log.warning(RANDOM_WEIGHTS_WARNING.format(config=getattr(net, "config_name", "?")))
    elif sam_ckpt is None:  # the encoder trains too: SAM 2.1 learnt from scratch (or loaded from a checkpoint next)
        log.info("model.net.ckpt_path is null and the image encoder trains: SAM 2.1 starts from random weights")
    if setting == "auto":
        return sam_ckpt is None
    if not isinstance(setting, bool):
        raise ValueError(f"model.save_frozen_weights must be auto, true or false, not {setting!r}")
    if not setting and sam_ckpt is None:
        raise ValueError(
            "model.save_frozen_weights=false needs model.net.ckpt_path: without Meta's file the frozen "
            "weights could not be restored from a checkpoint"
        )
    return setting


class FrozenWeights:
    """Checkpoint hooks of a module with a `net` (RootSAM) whose frozen weights may be left out."""

    net: RootSAM
    save_frozen_weights: bool
    _frozen_fingerprint: str | None = None

    # -- frozen weights ----------------------------------------------------------------------------
    def frozen_keys(self) -> set[str]:
        """state_dict keys of the frozen parameters (they never change, so checkpoints may omit them)."""
        return {f"net.{name}" for name, p in self.net.named_parameters() if not p.requires_grad}

    def frozen_fingerprint(self) -> str:
        """sha256 of the frozen weights: proves that a reloaded SAM file is the one a checkpoint was trained on."""
        if self._frozen_fingerprint is None:
            params = dict(self.named_parameters())
            self._frozen_fingerprint = encoder_fingerprint({k: params[k] for k in sorted(self.frozen_keys())})
        return self._frozen_fingerprint

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.save_frozen_weights:
            return
        frozen = self.frozen_keys()
        state = checkpoint["state_dict"]
        for key in frozen:
            state.pop(key, None)
        checkpoint["rootseg"]["frozen_omitted"] = {
            "count": len(frozen),
            "fingerprint": self.frozen_fingerprint(),
            "sam_checkpoint": self.net.ckpt_path,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put back the frozen weights a checkpoint left out (from model.net.ckpt_path), so loading is strict.

        Called by Lightning before it loads a state dict, and by `rootseg.tasks.checkpoints` (eval, init_ckpt).
        """
        self._frozen_fingerprint = None
        state = checkpoint["state_dict"]
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if not missing:
            return
        frozen = self.frozen_keys()
        other = [k for k in missing if k not in frozen]
        if other:
            raise CheckpointLoadError(
                f"the checkpoint lacks {len(other)} weights that are not frozen ({', '.join(other[:4])}"
                f"{', ...' if len(other) > 4 else ''}): was it trained with other freezing patterns?"
            )
        omitted = (checkpoint.get("rootseg") or {}).get("frozen_omitted") or {}
        if self.net.ckpt_path is None:
            raise CheckpointLoadError(
                f"the checkpoint leaves out {len(missing)} frozen SAM weights, to be read from Meta's file "
                f"({omitted.get('sam_checkpoint')}), but model.net.ckpt_path is null"
            )
        # the fingerprint of exactly the weights the checkpoint left out: a checkpoint of an earlier freezing
        # policy (which froze fewer modules and so stored more of them) still loads
        if omitted.get("fingerprint") and omitted["fingerprint"] != encoder_fingerprint({k: own[k] for k in missing}):
            raise CheckpointLoadError(
                f"model.net.ckpt_path={self.net.ckpt_path} holds other frozen weights than the SAM file this "
                f"checkpoint was trained on ({omitted.get('sam_checkpoint')})"
            )
        state.update({k: own[k] for k in missing})
