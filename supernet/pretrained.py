"""Initialising the supernet from a timm-layout ViT state dict (DeiT, ViT)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from search_space import Arch, BlockChoice
from search_space.errors import InputError
from search_space.files import path_exists
from supernet.supervit import SuperViT

__all__ = ["WeightsError", "init_from_file", "load_vit_weights", "read_vit_state_dict"]

_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
_BLOCK_TENSORS = ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                  "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                  "mlp.fc2.weight", "mlp.fc2.bias")
_TOP_TENSORS = ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed",
                "norm.weight", "norm.bias", "head.weight", "head.bias")


class WeightsError(InputError):
    """A state dict does not fit the supernet's space; the message names the tensor."""


def _shape(t: Tensor) -> str:
    return str(tuple(t.shape))


def _check_keys(state: Mapping[str, Tensor], head: bool) -> int:
    depth = 0
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise WeightsError(f"{key}: expected a tensor, got {type(value).__name__}")
        m = _BLOCK_KEY.match(key)
        if m:
            if m.group(2) not in _BLOCK_TENSORS:
                raise WeightsError(f"{key}: not a tensor of a timm ViT block")
            depth = max(depth, int(m.group(1)) + 1)
        elif key not in _TOP_TENSORS:
            raise WeightsError(f"{key}: unexpected tensor (not part of a timm VisionTransformer)")
    required = [k for k in _TOP_TENSORS if head or not k.startswith("head.")]
    required += [f"blocks.{i}.{t}" for i in range(depth) for t in _BLOCK_TENSORS]
    for key in required:
        if key not in state:
            raise WeightsError(f"{key}: missing from the state dict")
    return depth


def _copy_leading(dst: Tensor, src: Tensor, key: str) -> None:
    if src.dim() != dst.dim() or any(s > d for s, d in zip(src.shape, dst.shape, strict=True)):
        raise WeightsError(f"{key}: shape {_shape(src)} does not fit the supernet's {_shape(dst)}")
    dst[tuple(slice(0, s) for s in src.shape)].copy_(src)


def _block_choice(model: SuperViT, state: Mapping[str, Tensor], i: int, dim: int) -> BlockChoice:
    space = model.space
    qkv = state[f"blocks.{i}.attn.qkv.weight"]
    width = qkv.shape[0] // 3
    if qkv.shape[0] % 3 or width % space.head_dim or width // space.head_dim not in space.heads:
        raise WeightsError(
            f"blocks.{i}.attn.qkv.weight: shape {_shape(qkv)} needs 3 x heads x {space.head_dim} rows "
            f"with heads in {list(space.heads)}")
    hidden = state[f"blocks.{i}.mlp.fc1.weight"].shape[0]
    ratios = [r for r in space.mlp_ratio if round(r * dim) == hidden]
    if not ratios:
        raise WeightsError(f"blocks.{i}.mlp.fc1.weight: hidden width {hidden} is not mlp_ratio x {dim} "
                           f"for mlp_ratio in {list(space.mlp_ratio)}")
    attention = "softmax" if "softmax" in space.attention else space.attention[0]
    return BlockChoice(attention, width // space.head_dim, ratios[0], max(space.token_keep), max(space.bits))


@torch.no_grad()
def load_vit_weights(model: SuperViT, state_dict: Mapping[str, Tensor], *, head: bool = True) -> Arch:
    """Copy a timm-layout ViT's weights into the leading slices of the supernet.

    Returns the architecture that reproduces the loaded ViT (exactly when the space has
    softmax attention, token_keep 1.0 and 32 bits, and pools as the ViT did: timm's
    `global_pool="avg"` models keep their final norm as `fc_norm`, read here as `norm`).
    With `head=False` the classifier is left as initialised (for a new task with other classes).

    Raises:
        WeightsError: a tensor is missing, unexpected, or its shape does not fit the space.
    """
    space = model.space
    state = {("norm." + k[len("fc_norm."):] if k.startswith("fc_norm.") else k): v
             for k, v in state_dict.items() if head or not k.startswith("head.")}
    depth = _check_keys(state, head)
    dim = state["cls_token"].shape[-1]
    if dim not in space.embed_dim:
        raise WeightsError(f"cls_token: width {dim} is not one of embed_dim {list(space.embed_dim)}")
    if depth not in space.depth:
        raise WeightsError(f"blocks: {depth} blocks, but depth must be one of {list(space.depth)}")
    arch = Arch(dim, tuple(_block_choice(model, state, i, dim) for i in range(depth)))
    own = model.state_dict()
    for key, value in state.items():
        if key.endswith("attn.qkv.weight") or key.endswith("attn.qkv.bias"):
            c = value.shape[0] // 3
            target = own[key].view(3, own[key].shape[0] // 3, *own[key].shape[1:])
            _copy_leading(target, value.reshape(3, c, *value.shape[1:]), key)
        elif key == "pos_embed" and value.shape[1] != own[key].shape[1]:
            raise WeightsError(f"pos_embed: {value.shape[1]} tokens, the space has {own[key].shape[1]} "
                               f"({space.input.num_patches} patches + class token)")
        elif key == "patch_embed.proj.weight" and value.shape[1:] != own[key].shape[1:]:
            raise WeightsError(f"patch_embed.proj.weight: shape {_shape(value)} does not match the "
                               f"space's {space.input.channels} channels and patch {space.input.patch}")
        elif key.startswith("head.") and value.shape[0] != own[key].shape[0]:
            raise WeightsError(f"{key}: {value.shape[0]} classes, the space has {space.input.num_classes} "
                               "(pass head=False to keep a fresh classifier)")
        else:
            _copy_leading(own[key], value, key)
    model._active = None
    return space.canonical(arch)


def read_vit_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A timm/DeiT state dict from a `.pth` file, read with `weights_only=True` (never code).

    Accepts the bare state dict or the `{"model": ...}` / `{"state_dict": ...}` wrappers of
    the DeiT and timm releases.
    """
    p = Path(path)
    if not path_exists(p) or not p.is_file():
        raise WeightsError(f"{p}: no such weights file")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is a bad file, said in one line
        raise WeightsError(f"{p}: not a weights-only PyTorch file ({type(exc).__name__})") from None
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise WeightsError(f"{p}: expected a state dict of tensors")
    return data


def init_from_file(model: SuperViT, path: str | Path) -> str | None:
    """Initialise `model` from a timm-layout ViT file (`read_vit_state_dict`, `load_vit_weights`).

    The classifier is copied when it has the space's classes. Otherwise (a DeiT's 1000-way
    ImageNet head, a run on a dataset with other classes) every other tensor is, the head
    stays freshly initialised, and the returned line says so; None when nothing was left out.

    Raises:
        WeightsError: the file does not load, or a tensor other than the head does not fit.
    """
    state = read_vit_state_dict(path)
    head, classes = state.get("head.weight"), model.space.input.num_classes
    same = isinstance(head, Tensor) and head.dim() >= 1 and head.shape[0] == classes
    load_vit_weights(model, state, head=same)
    if same:
        return None
    theirs = f"its head has {head.shape[0]} classes" if isinstance(head, Tensor) and head.dim() else "no head"
    return f"{path}: {theirs}: loaded every other weight, the {classes}-way head starts fresh"
