"""A tiny random-weight Qwen2.5-VL, built offline, for the demo and the tests.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a few sentences,
with the Qwen special tokens and a Qwen-style chat template; the image and video processors
are transformers' Qwen2-VL processors; the model is ``Qwen2_5_VLForConditionalGeneration``
built from a tiny config with random weights. Everything is written with
``save_pretrained`` so it loads through exactly the code that loads a real checkpoint
(``ethoflow.vlm.load_vlm``). Its outputs are meaningless by construction.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A Qwen2-VL style chat template: system turn, then user/assistant turns whose content is a
# string or a list of {"type": "text" | "image" | "video"} items.
CHAT_TEMPLATE = (
    "{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "The two mice are sniffing each other in the cage.",
    "One mouse chases the other mouse around the arena.",
    "The mouse is freezing and does not move except for breathing.",
    "A mouse is grooming its face with its forepaws.",
    "The mouse walks along the wall of the open field.",
    "The mice are huddling together in the corner.",
    "One mouse mounts the other mouse.",
    "The mouse rears up on its hind legs and explores.",
    "The mouse is fleeing from the other mouse.",
    "The three mice are resting and immobile.",
    "What are the two mice doing in this video?",
    "Describe what the animals are doing in this video.",
    "Answer with exactly one label from this list: contact, locomotion, immobile, other.",
    "attack investigation mount other freezing fleeing grooming rearing",
    "You label the behavior of mice in short top-view videos.",
]


def build_tokenizer(vocab_size: int = 400):
    """Train a byte-level BPE on the corpus and wrap it as a Qwen2 fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = Qwen2TokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_config(tokenizer, kind: str = "qwen2_5_vl"):
    """A few-thousand-parameter config with the real architecture's structure."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [2, 3, 3],
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": True,
    }
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": True,
    }
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision = {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
    if kind == "qwen2_vl":
        from transformers import Qwen2VLConfig

        vision = {
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }
        return Qwen2VLConfig(text_config=text, vision_config=vision, **common)
    raise ValueError(f"unknown tiny model kind {kind!r}")


def build_tiny_vlm(out_dir: str | os.PathLike, kind: str = "qwen2_5_vl", seed: int = 0) -> Path:
    """Build and save a tiny random Qwen-VL (model + tokenizer + processor) into out_dir."""
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    pixels = {"shortest_edge": 56 * 56, "longest_edge": 448 * 448}
    image_processor = Qwen2VLImageProcessor(size=pixels)
    video_processor = Qwen2VLVideoProcessor(size=pixels)
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor as Processor
    else:
        from transformers import Qwen2VLProcessor as Processor
    processor = Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(tiny_config(tokenizer, kind))
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "ethoflow_demo.json").write_text(
        json.dumps({"random_demo_model": True, "kind": kind, "seed": seed}, indent=2)
    )
    return out


def build_tiny_qwen25vl(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    return build_tiny_vlm(out_dir, "qwen2_5_vl", seed)


def build_tiny_qwen2vl(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    return build_tiny_vlm(out_dir, "qwen2_vl", seed)
