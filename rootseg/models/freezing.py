"""Freeze parameters by name pattern, and prove that frozen weights stayed frozen.

Patterns are shell-style (`fnmatch`, e.g. "sam.image_encoder.*") or, with a "re:" prefix, regular
expressions matched against the whole parameter name (e.g. "re:sam\\.(memory_\\w+)\\..*"). A pattern that
matches no parameter is an error, so a typo cannot silently leave a module trainable.

RootSAM (Parth et al.): the image encoder is frozen, the prompt encoder and mask decoder train. SAM 2's
video-memory modules (memory attention / encoder, object pointers, temporal encodings) take no part in the
single-image path; they are frozen too so the optimiser never holds them and checkpoints may omit them.
`no_mem_embed` is added to every image embedding (`RootSAM.encode`); it is always frozen, and so are the parts
of the prompt encoder and mask decoder that point prompts never reach (mask prompts, the object-score head).
`rootsam_patterns` is the one place this policy is written; the config only feeds it (`model.train_image_encoder`,
`model.extra_frozen_patterns`, `model.net.project_high_res_in_decode`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

# Parameter names relative to a RootSAM module (its SAM2Base is the attribute `sam`).
ROOTSAM_ENCODER: tuple[str, ...] = ("sam.image_encoder.*",)
#: frozen whatever the config: `no_mem_embed` (a constant added to every embedding) and SAM 2's video memory
ROOTSAM_ALWAYS_FROZEN: tuple[str, ...] = (
    "sam.no_mem_embed",
    # video memory, unused for single images
    "sam.memory_attention.*",
    "sam.memory_encoder.*",
    "sam.mask_downsample.*",
    "sam.obj_ptr_proj.*",
    "sam.obj_ptr_tpos_proj.*",
    "sam.maskmem_tpos_enc",
    "sam.no_mem_pos_enc",
    "sam.no_obj_ptr",
    "sam.no_obj_embed_spatial",
    # in the prompt encoder and mask decoder but never in rootseg's path: mask prompts (rootseg prompts with
    # points only) and the object-score head (rootseg's loss has no object-score term). Trainable, they get no
    # gradient, which DDP refuses ("parameters that were not used in producing the loss")
    "sam.sam_prompt_encoder.mask_downscaling.*",
    "sam.sam_mask_decoder.pred_obj_score_head.*",
)
ROOTSAM_FROZEN: tuple[str, ...] = (*ROOTSAM_ENCODER, *ROOTSAM_ALWAYS_FROZEN)
ROOTSAM_TRAINABLE: tuple[str, ...] = ("sam.sam_prompt_encoder.*", "sam.sam_mask_decoder.*")
#: the prompt encoder's point embeddings: no pass reaches them when a model is trained promptless only
ROOTSAM_POINT_PROMPTS: tuple[str, ...] = (
    "sam.sam_prompt_encoder.point_embeddings.*",
    "sam.sam_prompt_encoder.not_a_point_embed.*",
)
#: the mask decoder's high-res projections; with RootSAM(project_high_res_in_decode=False) they run in `encode`
ROOTSAM_HIGH_RES_CONVS: tuple[str, ...] = ("sam.sam_mask_decoder.conv_s0.*", "sam.sam_mask_decoder.conv_s1.*")


def _matcher(pattern: str):
    if pattern.startswith("re:"):
        regex = re.compile(pattern[3:])
        return lambda name: regex.fullmatch(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, pattern)


def match_names(names: Iterable[str], patterns: Iterable[str], strict: bool = True) -> set[str]:
    """The names matched by any of `patterns`; with `strict`, a pattern matching nothing raises ValueError."""
    names = list(names)
    matched: set[str] = set()
    for pattern in patterns:
        hits = {n for n in names if _matcher(pattern)(n)}
        if strict and not hits:
            example = ", ".join(names[:3])
            raise ValueError(f"freezing pattern {pattern!r} matches no parameter (names look like: {example})")
        matched |= hits
    return matched


@dataclass(frozen=True)
class FreezeSummary:
    trainable: int  # number of trainable parameter elements
    frozen: int
    trainable_names: tuple[str, ...]

    def __str__(self) -> str:
        total = self.trainable + self.frozen
        share = 100 * self.trainable / max(total, 1)
        return f"{self.trainable:,} trainable / {total:,} parameters ({share:.2f} %)"


def freeze_by_patterns(
    model: nn.Module,
    frozen: Iterable[str],
    trainable: Iterable[str] | None = None,
    strict: bool = True,
) -> FreezeSummary:
    """Set `requires_grad` on every parameter of `model` by name.

    A parameter trains iff it matches a `trainable` pattern (every parameter does when `trainable` is None)
    and matches no `frozen` pattern: frozen wins. Returns counts and the trainable names.
    """
    names = [name for name, _ in model.named_parameters()]
    frozen_names = match_names(names, frozen, strict)
    trainable_names = set(names) if trainable is None else match_names(names, trainable, strict)
    n_train = n_frozen = 0
    for name, param in model.named_parameters():
        train = name in trainable_names and name not in frozen_names
        param.requires_grad_(train)
        if train:
            n_train += param.numel()
        else:
            n_frozen += param.numel()
    chosen = tuple(n for n in names if n in trainable_names and n not in frozen_names)
    return FreezeSummary(n_train, n_frozen, chosen)


def rootsam_patterns(
    train_image_encoder: bool = False, high_res_in_encode: bool = False, point_prompts: bool = True
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """RootSAM's one freezing policy as (frozen, trainable) name patterns.

    The prompt encoder and mask decoder train; the video memory and `no_mem_embed` never do; the image encoder
    trains only with `train_image_encoder` (the paper freezes it). The high-res projections belong to whichever
    half runs them: the decoder's when they run in `decode`, the encoder's when they run in `encode`
    (`high_res_in_encode`), so that `encode` is a function of frozen weights whenever the encoder is frozen.
    Without `point_prompts` (promptless training) the point embeddings stay frozen: no pass would reach them.
    Every trainable weight gets a gradient from the loss, as DDP requires.
    """
    frozen = list(ROOTSAM_ALWAYS_FROZEN)
    if not point_prompts:
        frozen += ROOTSAM_POINT_PROMPTS
    trainable = list(ROOTSAM_TRAINABLE)
    if train_image_encoder:
        trainable += ROOTSAM_ENCODER
    else:
        frozen += ROOTSAM_ENCODER
        if high_res_in_encode:
            frozen += ROOTSAM_HIGH_RES_CONVS
    return tuple(frozen), tuple(trainable)


def freeze_rootsam(
    model: nn.Module, train_image_encoder: bool = False, extra_frozen: Iterable[str] = (), point_prompts: bool = True
) -> FreezeSummary:
    """Apply `rootsam_patterns` to a RootSAM (the projections run in `encode` when the model says so).

    Patterns of the policy that match nothing (stand-ins and sam2 configs without some memory module) are
    skipped, except the encoder's. `extra_frozen` freezes more (frozen wins: nothing unfreezes what the policy
    freezes); each of its patterns must match a parameter (a typo is an error).
    """
    high_res_in_encode = not getattr(model, "project_high_res_in_decode", True)
    frozen, trainable = rootsam_patterns(train_image_encoder, high_res_in_encode, point_prompts)
    names = {name for name, _ in model.named_parameters()}
    present = [p for p in frozen if p in ROOTSAM_ENCODER or match_names(names, [p], strict=False)]
    summary = freeze_by_patterns(model, [*present, *extra_frozen], trainable)  # strict: extra_frozen must match
    if isinstance(model, nn.Module) and hasattr(model, "sam"):
        model.train(model.training)  # RootSAM.train keeps a frozen encoder in eval mode
    return summary


def trainable_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The parameters that require grad (what the optimiser should hold)."""
    return (p for p in model.parameters() if p.requires_grad)


def trainable_named_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    return ((n, p) for n, p in model.named_parameters() if p.requires_grad)


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the trainable parameters: a fine-tuned RootSAM checkpoint without the frozen 200 M encoder."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def _digest(tensor: torch.Tensor) -> str:
    data = tensor.detach().cpu().contiguous()
    raw = data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b""
    return hashlib.sha1(f"{data.dtype}{tuple(data.shape)}".encode() + raw).hexdigest()


def snapshot_frozen(model: nn.Module) -> dict[str, str]:
    """A digest of every frozen parameter (memory-light: sha1 per tensor, not a copy)."""
    return {n: _digest(p) for n, p in model.named_parameters() if not p.requires_grad}


def assert_frozen_unchanged(model: nn.Module, snapshot: Mapping[str, str]) -> None:
    """Raise AssertionError if a parameter of `snapshot` became trainable, changed, or disappeared."""
    params = dict(model.named_parameters())
    missing = [n for n in snapshot if n not in params]
    thawed = [n for n in snapshot if n in params and params[n].requires_grad]
    changed = [n for n in snapshot if n in params and _digest(params[n]) != snapshot[n]]
    if missing or thawed or changed:
        parts = []
        for label, names in (("missing", missing), ("now trainable", thawed), ("changed", changed)):
            if names:
                parts.append(f"{len(names)} {label} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
        raise AssertionError("frozen parameters were touched: " + "; ".join(parts))
