"""RootSAM's one freezing policy, whatever the config feeds it, and the embedding cache that refuses features
computed by weights that train. The micro SAM 2.1 (random weights) as composed by `micro_rootsam`."""

from __future__ import annotations

import hydra
import pytest
import torch
from micro_rootsam import micro_config, micro_module

from rootseg.config.run_config import resolved_container
from rootseg.models.embedding_cache import StaleEmbeddingsError
from rootseg.tasks.checkpoints import load_module

pytestmark = pytest.mark.usefixtures("one_thread")

DECODER, PROMPT, ENCODER = "net.sam.sam_mask_decoder.", "net.sam.sam_prompt_encoder.", "net.sam.image_encoder."
CONVS = ("net.sam.sam_mask_decoder.conv_s0.", "net.sam.sam_mask_decoder.conv_s1.")
#: reached by no pass of rootseg's (mask prompts, the object-score head), and the point prompts' embeddings
NEVER = ("net.sam.sam_prompt_encoder.mask_downscaling.", "net.sam.sam_mask_decoder.pred_obj_score_head.")
POINTS = ("net.sam.sam_prompt_encoder.point_embeddings.", "net.sam.sam_prompt_encoder.not_a_point_embed.")


def expected_trainable(name: str, encoder: bool, convs: bool, prompt: bool = True, points: bool = True) -> bool:
    """The policy as README states it, written out by prefix: decoder and prompt encoder train (but for the
    parts no pass reaches: mask prompts, the object-score head, and the point embeddings in promptless
    training), the image encoder only when asked, the high-res projections unless they run in a frozen
    encode; nothing else."""
    if name.startswith(NEVER) or (not points and name.startswith(POINTS)):
        return False
    if name.startswith(CONVS):
        return convs
    if name.startswith(DECODER):
        return True
    if name.startswith(PROMPT):
        return prompt
    return encoder and name.startswith(ENCODER)


@pytest.mark.parametrize(
    ("overrides", "encoder", "convs", "prompt"),
    [
        ([], False, True, True),
        (["model.prompt_mode=mixed"], False, True, True),
        (["model.net.project_high_res_in_decode=false"], False, False, True),
        (["model.train_image_encoder=true"], True, True, True),
        (["model.train_image_encoder=true", "model.net.project_high_res_in_decode=false"], True, True, True),
        (["model.extra_frozen_patterns=[sam.sam_prompt_encoder.*]"], False, True, False),
    ],
)
def test_the_config_feeds_the_one_policy(tmp_path, overrides, encoder, convs, prompt):
    module = micro_module(micro_config(tmp_path, tmp_path / "run", *overrides))
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    expected = {n for n, _ in module.named_parameters() if expected_trainable(n, encoder, convs, prompt)}
    assert expected and trainable == expected
    assert not module.net.sam.no_mem_embed.requires_grad
    assert (module.net.trainable_in_encode() == []) is (not encoder)


def test_promptless_training_keeps_the_point_embeddings_frozen(tmp_path):
    module = micro_module(micro_config(tmp_path, tmp_path / "run", "model.prompt_mode=none"))
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in module.named_parameters() if expected_trainable(n, False, True, points=False)}


@pytest.mark.parametrize("mode", ["points", "none", "mixed"])
def test_every_trainable_weight_gets_a_gradient(tmp_path, mode):
    """What DDP requires of a training step ("parameters that were not used in producing the loss" otherwise):
    one step of each prompt mode gives every trainable weight a gradient, and none to a frozen one."""
    import lightning as L

    cfg = micro_config(tmp_path / "data", tmp_path / "run", f"model.prompt_mode={mode}", "data.max_objects=4", n=3)
    datamodule, module = hydra.utils.instantiate(cfg.data), micro_module(cfg)
    seen: dict[str, list[str]] = {}

    class Grads(L.Callback):
        def on_after_backward(self, trainer, pl_module):
            params = list(pl_module.named_parameters())
            seen["missing"] = [n for n, p in params if p.requires_grad and p.grad is None]
            seen["frozen_with_grad"] = [n for n, p in params if not p.requires_grad and p.grad is not None]

    trainer = L.Trainer(
        accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[Grads()],
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    assert seen == {"missing": [], "frozen_with_grad": []}


def test_the_study_trains_the_encoder_and_the_decoder(tmp_path):
    """rootsam_modes_small (on the micro net here): encoder, prompt encoder and decoder train; memory does not."""
    cfg = micro_config(tmp_path, tmp_path / "run", experiment="rootsam_modes_small")
    assert cfg.model.train_image_encoder is True
    module = micro_module(cfg)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in module.named_parameters() if expected_trainable(n, True, True)}


def test_a_typo_in_extra_frozen_patterns_is_an_error(tmp_path):
    with pytest.raises(Exception, match="matches no parameter"):
        micro_module(micro_config(tmp_path, tmp_path / "run", "model.extra_frozen_patterns=[image_encoder.*]"))


def tile_batch(module) -> torch.Tensor:
    return torch.randint(0, 255, (1, 3, module.tile, module.tile), dtype=torch.uint8)


def test_cache_serves_features_of_frozen_weights_only(tmp_path):
    """High-res projections in encode, frozen by the policy: the cache serves. A projection made trainable
    afterwards (or an encoder that trains) makes the cache refuse, naming the weight and the fix."""
    cfg = micro_config(tmp_path, tmp_path / "run", "model.net.project_high_res_in_decode=false")
    module = micro_module(cfg).eval()
    cache = module.enable_embedding_cache(tmp_path / "cache")
    images = tile_batch(module)
    with torch.no_grad():
        first = module.embeddings(images)
        assert len(list(cache.directory.rglob("meta.json"))) == 1
        module.net.sam.sam_mask_decoder.conv_s0.weight.requires_grad_(True)
        with pytest.raises(StaleEmbeddingsError, match=r"conv_s0\.weight.*data\.cache_embeddings=false"):
            module.embeddings(images)
    assert first["image_embed"].shape[0] == 1


def test_cache_is_refused_when_the_encoder_trains(tmp_path):
    module = micro_module(micro_config(tmp_path, tmp_path / "run", "model.train_image_encoder=true"))
    with pytest.raises(StaleEmbeddingsError, match="image_encoder.*model.train_image_encoder=false"):
        module.enable_embedding_cache(tmp_path / "cache")
    assert module.embedding_cache is None


def test_cache_flag_with_a_trainable_encoder_stops_the_run(tmp_path):
    """`data.cache_embeddings=true` as a user sets it: fit stops before the first step instead of caching."""
    overrides = ["model.train_image_encoder=true", "data.cache_embeddings=true", f"data.cache_dir={tmp_path / 'c'}"]
    cfg = micro_config(tmp_path, tmp_path / "run", *overrides, "trainer.max_epochs=1", "trainer.limit_train_batches=1")
    module = micro_module(cfg)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[], logger=False, enable_checkpointing=False)
    with pytest.raises(StaleEmbeddingsError):
        trainer.fit(module, datamodule=hydra.utils.instantiate(cfg.data))
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("meta.json"))


def test_a_checkpoint_written_with_the_old_pattern_keys_still_loads(tmp_path):
    """Checkpoints of the rootsam_modes study carry frozen_patterns / trainable_patterns: they load with the
    same weights training."""
    cfg = micro_config(tmp_path, tmp_path / "run", "model.train_image_encoder=true")
    module = micro_module(cfg)
    config = resolved_container(cfg)
    del config["model"]["train_image_encoder"], config["model"]["extra_frozen_patterns"]
    config["model"]["frozen_patterns"] = ["sam.no_mem_embed", "sam.memory_attention.*"]
    config["model"]["trainable_patterns"] = ["sam.image_encoder.*", "sam.sam_prompt_encoder.*", "sam.sam_*decoder.*"]
    module.run_config = config
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "old.ckpt")
    loaded = load_module(tmp_path / "old.ckpt")
    trainable = {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert trainable == {n for n, p in module.named_parameters() if p.requires_grad}
    assert any(n.startswith(ENCODER) for n in trainable)
