"""RootSAM (Parth et al.): SAM 2.1's single-image path with point prompts, as a plain `nn.Module`.

The wrapper exposes the two halves separately so that the expensive, frozen image encoder runs once per
tile (and can be cached, `rootseg.models.embedding_cache`) while many prompts are decoded against it:

    embeddings = model.encode(sam_normalize(tiles))           # [B, 3, S, S] -> features
    logits, iou = model.decode(embeddings, coords, labels)     # [B, N_obj, M, S, S], [B, N_obj, M]
    logits, iou = model.decode_promptless(embeddings)          # [B, 1, 1, S, S], [B, 1, 1]: every root

`decode_promptless` uses SAM as RootPainter's MobileSAM root model does (`trainer/src/MobileSAMInference.py`):
the prompt encoder gets no point, box or mask and the decoder segments every root of the tile in one pass.

Tiles of any square size S are resized to SAM's `image_size` (1024 for Meta's checkpoints) inside
`encode`; point coordinates are given, and masks returned, in the S x S pixel frame of the tile.

The logic follows `SAM2ImagePredictor.set_image_batch` / `_predict` (sam2 1.1.0), which is not imported:
it pulls in torchvision. One deliberate difference: the predictor applies the mask decoder's `conv_s0` /
`conv_s1` projections of the high-resolution features inside the image stage, but these weights belong to
the (trained) mask decoder. With `project_high_res_in_decode=True` (default) `encode` returns the raw
backbone features, a function of frozen weights only, and `decode` applies the projections so they train
as in sam2's own fine-tuning. With `False` the projections run in `encode` (predictor behaviour, a ~5x
smaller embedding cache) and are frozen with the encoder (`freezing.rootsam_patterns`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

SAM_PIXEL_MEAN = (0.485, 0.456, 0.406)  # ImageNet, as SAM2Transforms
SAM_PIXEL_STD = (0.229, 0.224, 0.225)

Embeddings = dict[str, Any]  # {"image_embed": Tensor, "high_res_feats": list[Tensor], "input_size": int}


def sam_normalize(images: Tensor, max_value: float = 255.0) -> Tensor:
    """Scale images to [0, 1] by `max_value` and normalise with ImageNet mean/std, as SAM expects.

    images: [B, 3, H, W] or [3, H, W], uint8 or float in [0, max_value]. Returns float32.
    """
    if images.shape[-3] != 3:
        raise ValueError(f"sam_normalize expects channel-first RGB (..., 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8 and max_value != 255.0:
        raise ValueError("uint8 images are in [0, 255]; leave max_value at 255")
    x = images.float() / max_value
    mean = torch.tensor(SAM_PIXEL_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(SAM_PIXEL_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def resize_to(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize of [B, C, H, W] or [C, H, W] to `size`, antialiased when shrinking (no-op if equal)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size:
        return images
    squeeze = images.dim() == 3
    x = images[None] if squeeze else images
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    dtype = x.dtype
    x = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=shrink)
    x = x.to(dtype) if dtype.is_floating_point else x
    return x[0] if squeeze else x


class RootSAM(nn.Module):
    """SAM 2.1 image encoder + prompt encoder + mask decoder, batched over tiles and objects.

    Args:
        sam: a built `SAM2Base` (or a stand-in with the same attributes). If None, one is built from
            `config_name` / `overrides` / `ckpt_path` by `rootseg.models.sam2_builder.build_sam2_model`.
        config_name: sam2 config, e.g. "sam2.1_hiera_l" (RootSAM) or "sam2.1_hiera_t" (tests).
        overrides: keys under the sam2 config's `model` node, e.g. `{"image_size": 256}` for fast tests.
        ckpt_path: Meta checkpoint to load strictly (`{"model": state_dict}`).
        project_high_res_in_decode: see the module docstring.

    The module holds no freezing policy of its own; apply `rootseg.models.freezing.freeze_rootsam`.
    """

    def __init__(
        self,
        sam: nn.Module | None = None,
        config_name: str = "sam2.1_hiera_l",
        overrides: Mapping[str, Any] | DictConfig | None = None,
        ckpt_path: str | Path | None = None,
        project_high_res_in_decode: bool = True,
    ) -> None:
        super().__init__()
        if sam is None:
            from rootseg.models.sam2_builder import build_sam2_model

            sam = build_sam2_model(config_name, dict(overrides or {}), ckpt_path)
        elif ckpt_path is not None:
            from rootseg.models.sam2_builder import load_sam2_checkpoint

            load_sam2_checkpoint(sam, ckpt_path)
        self.sam = sam
        self.config_name = config_name
        #: the Meta checkpoint the weights came from (None: random or caller-provided weights); RootSAMModule
        #: reloads frozen weights from it instead of storing them in every checkpoint
        self.ckpt_path = str(ckpt_path) if ckpt_path is not None else None
        self.project_high_res_in_decode = project_high_res_in_decode

    # ------------------------------------------------------------------ sizes
    @property
    def image_size(self) -> int:
        """Side of the square image the encoder sees (SAM's 1024 unless overridden)."""
        return int(self.sam.image_size)

    @property
    def feature_sizes(self) -> list[tuple[int, int]]:
        """Spatial sizes of the high-res levels and the image embedding: image_size / (4, 8, 16)."""
        s = self.image_size
        return [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]

    @property
    def encoder_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.sam.image_encoder.parameters())

    def trainable_in_encode(self) -> list[str]:
        """Names of the trainable parameters `encode` uses (empty: its output depends on frozen weights only,
        so cached embeddings stay valid while the rest trains)."""
        named = [(f"{prefix}.{n}", p) for prefix, m in self._encode_modules().items() for n, p in m.named_parameters()]
        if getattr(self.sam, "directly_add_no_mem_embed", False):
            named.append(("no_mem_embed", self.sam.no_mem_embed))
        return [f"sam.{name}" for name, p in named if p.requires_grad]

    def _encode_modules(self) -> dict[str, nn.Module]:
        """The modules `encode` runs, by name under `sam` (the high-res projections when they run there)."""
        modules = {"image_encoder": self.sam.image_encoder}
        if not self.project_high_res_in_decode and self._uses_high_res:
            decoder = self.sam.sam_mask_decoder
            modules |= {f"sam_mask_decoder.{name}": getattr(decoder, name) for name in ("conv_s0", "conv_s1")}
        return modules

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """Every tensor `encode` depends on (for cache fingerprints): the image encoder, `no_mem_embed`,
        and the high-res projections when they run in `encode`."""
        state = {f"{prefix}.{k}": v for prefix, m in self._encode_modules().items() for k, v in m.state_dict().items()}
        if getattr(self.sam, "directly_add_no_mem_embed", False):
            state["no_mem_embed"] = self.sam.no_mem_embed.detach()
        return state

    def encoder_fingerprint(self) -> str:
        """Hash of the encoder weights and of every setting that changes `encode`'s output."""
        from rootseg.models.embedding_cache import encoder_fingerprint

        extra = f"image_size={self.image_size};project_in_decode={self.project_high_res_in_decode}"
        return encoder_fingerprint(self.encoder_state_dict(), extra=extra)

    @property
    def _uses_high_res(self) -> bool:
        return bool(getattr(self.sam, "use_high_res_features_in_sam", False))

    # ------------------------------------------------------------------ image path
    def encode(self, images: Tensor) -> Embeddings:
        """Image features for normalised tiles `images` [B, 3, S, S] (see `sam_normalize`).

        Returns {"image_embed": [B, C, s/16, s/16], "high_res_feats": [[B, C0, s/4, s/4], [B, C1, s/8, s/8]],
        "input_size": S} with s = image_size. Runs without autograd when the image encoder is frozen.
        """
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"encode expects square tiles [B, 3, S, S], got {tuple(images.shape)}")
        input_size = int(images.shape[-1])
        x = resize_to(images, self.image_size)
        sam = self.sam
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            backbone_out = sam.image_encoder(x)
        fpn = list(backbone_out["backbone_fpn"])
        if self._uses_high_res and not self.project_high_res_in_decode:
            fpn[0] = sam.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = sam.sam_mask_decoder.conv_s1(fpn[1])
        backbone_out = {**backbone_out, "backbone_fpn": fpn}
        # As SAM2ImagePredictor.set_image_batch: flatten, add no_mem_embed to the lowest-res map, unflatten.
        _, vision_feats, _, feat_sizes = sam._prepare_backbone_features(backbone_out)
        if getattr(sam, "directly_add_no_mem_embed", False):
            vision_feats[-1] = vision_feats[-1] + sam.no_mem_embed
        batch = x.shape[0]
        feats = [f.permute(1, 2, 0).reshape(batch, -1, *size) for f, size in zip(vision_feats, feat_sizes)]
        return {"image_embed": feats[-1], "high_res_feats": feats[:-1], "input_size": input_size}

    def decode(
        self,
        embeddings: Embeddings,
        point_coords: Tensor,
        point_labels: Tensor,
        multimask_output: bool = True,
        output_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Masks for every object of every tile in one mask-decoder call.

        Args:
            embeddings: from `encode` (or the embedding cache) for B tiles.
            point_coords: [B, N_obj, K, 2] (x, y) in pixels of the S x S tile given to `encode`.
            point_labels: [B, N_obj, K]: 1 positive, 0 negative, -1 padding (ignored by SAM).
            multimask_output: 3 masks per object (train with the best, `SAMLoss`) or 1. In eval mode with a
                single mask, sam2's dynamic fallback to the most stable multimask output applies.
            output_size: side of the returned masks; None = S, 0 = the decoder's native image_size / 4.

        Returns mask_logits [B, N_obj, M, H, W] and iou_pred [B, N_obj, M] (M = 3 or 1).
        """
        if point_coords.dim() != 4 or point_coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be [B, N_obj, K, 2], got {tuple(point_coords.shape)}")
        if point_labels.shape != point_coords.shape[:-1]:
            raise ValueError(
                f"point_labels {tuple(point_labels.shape)} does not match point_coords {tuple(point_coords.shape)}"
            )
        sam = self.sam
        batch, n_obj, k = point_labels.shape
        if embeddings["image_embed"].shape[0] != batch:
            raise ValueError(f"{embeddings['image_embed'].shape[0]} tile embeddings but prompts for {batch} tiles")
        image_embed, high_res, input_size = self._decoder_inputs(embeddings)
        dtype = image_embed.dtype

        if n_obj == 0:
            m = 3 if multimask_output else 1
            side = input_size if output_size is None else (output_size or self.image_size // 4)
            empty = image_embed.new_zeros(batch, 0, m, side, side)
            return empty, image_embed.new_zeros(batch, 0, m)

        # Prompt frame: SAM's image_size x image_size input (as SAM2Transforms.transform_coords).
        coords = point_coords.reshape(batch * n_obj, k, 2).float() * (self.image_size / input_size)
        labels = point_labels.reshape(batch * n_obj, k).int()
        sparse, dense = sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)

        def per_object(t: Tensor) -> Tensor:
            return t.repeat_interleave(n_obj, dim=0)

        low_res, iou_pred, _, _ = sam.sam_mask_decoder(
            image_embeddings=per_object(image_embed),
            image_pe=sam.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse.to(dtype),
            dense_prompt_embeddings=dense.to(dtype),
            multimask_output=multimask_output,
            repeat_image=False,
            high_res_features=[per_object(f) for f in high_res] if self._uses_high_res else None,
        )
        low_res = low_res.float()
        side = input_size if output_size is None else output_size
        if side:
            low_res = F.interpolate(low_res, size=(side, side), mode="bilinear", align_corners=False)
        m = low_res.shape[1]
        return low_res.reshape(batch, n_obj, m, *low_res.shape[-2:]), iou_pred.float().reshape(batch, n_obj, m)

    def _decoder_inputs(self, embeddings: Embeddings) -> tuple[Tensor, list[Tensor], int]:
        """The image embedding and high-res features in the decoder's dtype (projected here when they are
        projected in decode), and the tile side `encode` was given."""
        sam = self.sam
        dtype = sam.sam_mask_decoder.iou_token.weight.dtype
        image_embed = embeddings["image_embed"].to(dtype)
        high_res = [f.to(dtype) for f in list(embeddings.get("high_res_feats") or [])]
        if self._uses_high_res and self.project_high_res_in_decode:
            high_res = [sam.sam_mask_decoder.conv_s0(high_res[0]), sam.sam_mask_decoder.conv_s1(high_res[1])]
        return image_embed, high_res, int(embeddings.get("input_size", self.image_size))

    def decode_promptless(self, embeddings: Embeddings, output_size: int | None = None) -> tuple[Tensor, Tensor]:
        """Every root of each tile without a click: one mask per tile from one decoder pass.

        The prompt encoder is given nothing (sparse prompt empty, dense prompt the no-mask embedding), and the
        single-mask output token is read from `predict_masks` itself, so sam2's eval-mode fallback to a
        multimask token (`dynamic_multimask_via_stability`) never swaps in an output trained for clicks.
        Returns mask_logits [B, 1, 1, H, W] and iou_pred [B, 1, 1], shaped as `decode` with one object
        (H = W = the tile side; `output_size` as in `decode`).
        """
        sam = self.sam
        image_embed, high_res, input_size = self._decoder_inputs(embeddings)
        batch, dtype = image_embed.shape[0], image_embed.dtype
        sparse, dense = sam.sam_prompt_encoder(points=None, boxes=None, masks=None)
        low_res, iou_pred, _, _ = sam.sam_mask_decoder.predict_masks(
            image_embeddings=image_embed,
            image_pe=sam.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse.to(dtype).expand(batch, -1, -1),
            dense_prompt_embeddings=dense.to(dtype).expand(batch, -1, -1, -1),
            repeat_image=False,
            high_res_features=high_res if self._uses_high_res else None,
        )
        low_res, iou_pred = low_res[:, :1].float(), iou_pred[:, :1].float()
        side = input_size if output_size is None else output_size
        if side:
            low_res = F.interpolate(low_res, size=(side, side), mode="bilinear", align_corners=False)
        return low_res[:, None], iou_pred[:, None]

    def forward(
        self,
        images: Tensor,
        point_coords: Tensor,
        point_labels: Tensor,
        multimask_output: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """`decode(encode(images), ...)`: normalised tiles [B, 3, S, S] -> ([B, N, M, S, S], [B, N, M])."""
        return self.decode(self.encode(images), point_coords, point_labels, multimask_output)

    def train(self, mode: bool = True) -> RootSAM:
        """Keep a frozen image encoder in eval mode (no drop-path) whatever the module's mode."""
        super().train(mode)
        if self.encoder_frozen:
            self.sam.image_encoder.eval()
        return self
