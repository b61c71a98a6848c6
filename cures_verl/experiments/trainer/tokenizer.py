"""Word-level tokenizer of the digit-sum demo task, built offline in milliseconds.

The vocabulary is a few dozen words: four special tokens, the chat-role words, ``\\n``, ``+``, ``=`` and the
numbers ``0..max_number``. Every number is one token, so an answer is exactly one token followed by EOS.

The tokenizer is a ``tokenizers`` WordLevel model wrapped in ``PreTrainedTokenizerFast`` with a ChatML-style
Jinja chat template (the same ``<|im_start|>role\\n...<|im_end|>\\n`` layout as Qwen2, so verl's Qwen
Continuous-Token builder accepts it: ``\\n`` is one token and ``<|im_end|>`` exists).

Save it with :func:`save_tokenizer` into a directory that holds **only** tokenizer files. transformers 5's
``AutoTokenizer`` ignores our ``tokenizer.json`` in a directory whose ``config.json`` says ``qwen2`` and
silently returns a ``Qwen2Tokenizer`` that cannot tokenize ``\\n`` (verl then fails in
``utils/tokenizer/continuous_token.py:558``); verl must therefore get this directory through
``actor_rollout_ref.model.tokenizer_path``.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = [
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "build_tokenizer",
    "save_tokenizer",
]

PAD_TOKEN = "<pad>"
BOS_OF_TURN_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_OF_TURN_TOKEN, EOS_TOKEN, UNK_TOKEN)
WORDS = ("user", "assistant", "system", "\n", "+", "=")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(max_number: int) -> PreTrainedTokenizerFast:
    """Build the demo tokenizer whose numbers run from 0 to ``max_number``.

    Args:
        max_number: Largest number that must be one token (the largest possible answer), >= 9.

    Returns:
        A fast tokenizer with pad ``<pad>``, EOS ``<|im_end|>`` and the ChatML chat template.

    Raises:
        ValueError: If ``max_number < 9`` (the operands are the digits 0..9).

    Example:
        >>> tok = build_tokenizer(27)
        >>> len(tok), tok.eos_token, tok.encode("3 + 4 =", add_special_tokens=False) == [
        ...     tok.convert_tokens_to_ids(t) for t in ("3", "+", "4", "=")]
        (38, '<|im_end|>', True)
    """
    if max_number < 9:
        raise ValueError(f"max_number={max_number} is too small: the operands are the digits 0..9, use >= 9")
    vocab_tokens = [*SPECIAL_TOKENS, *WORDS, *(str(number) for number in range(max_number + 1))]
    vocab = {token: index for index, token in enumerate(vocab_tokens)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # "user\n3 + 4 =" -> ["user", "\n", "3", "+", "4", "="]: drop spaces/tabs, keep each "\n" as a token.
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[ \t]+"), behavior="removed"),
            pre_tokenizers.Split("\n", behavior="isolated"),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=[BOS_OF_TURN_TOKEN],
        chat_template=CHAT_TEMPLATE,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> Path:
    """Save ``tokenizer`` into ``directory``, which must not hold a model ``config.json``.

    Args:
        tokenizer: The tokenizer from :func:`build_tokenizer`.
        directory: Target directory; created if missing.

    Returns:
        The directory, as a ``Path``.

    Raises:
        ValueError: If ``directory`` already contains a ``config.json`` (transformers would then load the
            model type's own tokenizer class instead of ours, see the module docstring).
    """
    path = Path(directory)
    if (path / "config.json").exists():
        raise ValueError(
            f"{path} holds a model config.json; save the demo tokenizer into a tokenizer-only directory, "
            "because transformers 5 would load a Qwen2Tokenizer from it and ignore our tokenizer.json"
        )
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    return path
