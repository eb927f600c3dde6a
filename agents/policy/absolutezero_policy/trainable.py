"""Which parameters the learner updates: all of them, or the top transformer blocks.

Why partial training exists: on a 2-core CPU the update of a 0.5B model costs ~6N FLOPs
per token (forward, backward to activations, backward to weights), and self-play prompts
are long (references, programs), so a full update dominates a CPU step (docs/results.md).
Training only the top ``k`` of the model's blocks (plus the final norm and the output
head) keeps the gradient *exact* for those parameters, but autograd then stops at the
first frozen block: the backward pass costs ~4N k/L instead of 4N per token, and AdamW
state shrinks with it. ``trainable_layers=0`` trains everything (the paper's setting, and
the right one on GPUs).
"""

from __future__ import annotations

from typing import Any

import torch


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's stack of transformer blocks: its longest ``ModuleList``.

    Raises:
        ValueError: the model has no ModuleList (not a transformer stack we can slice).
    """
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no stack of blocks (nn.ModuleList) to train a top part of")
    return max(lists, key=len)


def select_trainable(model: Any, trainable_layers: int) -> tuple[int, int]:
    """Set ``requires_grad``: all parameters (``trainable_layers=0``), or the top
    ``trainable_layers`` blocks plus everything outside the block stack except the input
    embeddings (the final norm and the output head; a head tied to the embeddings
    stays trainable through the head).

    Returns:
        ``(trainable, total)`` parameter counts.

    Raises:
        ValueError: a negative count.

    A count at or above the model's depth trains every block (so one default suits
    models of any depth); the input embeddings stay frozen then too.
    """
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int) or trainable_layers < 0:
        raise ValueError(f"trainable_layers must be an integer >= 0 (0 = all), got {trainable_layers!r}")
    parameters = list(model.parameters())
    if trainable_layers == 0:
        for parameter in parameters:
            parameter.requires_grad_(True)
    else:
        layers = decoder_layers(model)
        in_stack = {id(p) for p in layers.parameters()}
        top = {id(p) for block in list(layers)[-trainable_layers:] for p in block.parameters()}
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        frozen_embedding = {id(p) for p in embeddings.parameters()} if embeddings is not None else set()
        head_ids = {id(p) for p in head.parameters()} if head is not None else set()
        for parameter in parameters:
            if id(parameter) in in_stack:
                parameter.requires_grad_(id(parameter) in top)
            else:
                parameter.requires_grad_(id(parameter) in head_ids or id(parameter) not in frozen_embedding)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    return trainable, sum(p.numel() for p in parameters)
