"""Prompt templates: how a problem becomes verl's ``prompt`` chat messages.

The paper's template (CurES Sec. 5 and the released ``stage_0_init_difficulty_sample_size.py``, the
same as GVM's Numina preprocessing) is a system turn plus a user turn:

* system: ``Please reason step by step, and put your final answer within \\boxed{}.``
* user: ``<problem> Let's think step by step and output the final answer within \\boxed{}.``

verl applies the model's chat template later (in the agent loop), so the dataset stores only the
messages. Training and evaluation files must use the same template; the prepared file's manifest
records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cures_verl.data.schema import lookup

__all__ = ["PromptTemplate", "PROMPT_TEMPLATES", "get_template"]

PAPER_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
PAPER_USER_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."


@dataclass(frozen=True, kw_only=True)
class PromptTemplate:
    """A system prompt plus text placed around the problem in the user turn.

    Attributes:
        name: Label stored in the manifest (``custom`` for user-built templates).
        system: System message, or ``None`` for no system turn.
        user_prefix: Text placed before the problem (joined with ``separator``); empty for none.
        user_suffix: Text placed after the problem (joined with ``separator``); empty for none.
        separator: String between prefix, problem and suffix.
    """

    name: str = "custom"
    system: str | None = None
    user_prefix: str = ""
    user_suffix: str = ""
    separator: str = " "

    def user_content(self, problem: str) -> str:
        """Return the user turn for ``problem``.

        Example:
            >>> PROMPT_TEMPLATES["cures"].user_content("What is 1+1?")
            "What is 1+1? Let's think step by step and output the final answer within \\\\boxed{}."
        """
        parts = [part for part in (self.user_prefix, problem, self.user_suffix) if part]
        return self.separator.join(parts)

    def messages(self, problem: str) -> list[dict[str, str]]:
        """Return verl's ``prompt`` column for ``problem``: a list of ``{"role", "content"}`` dicts.

        Example:
            >>> [m["role"] for m in PROMPT_TEMPLATES["cures"].messages("1+1?")]
            ['system', 'user']
        """
        messages = []
        if self.system is not None:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": self.user_content(problem)})
        return messages

    def to_dict(self) -> dict[str, str | None]:
        """Return the template as a plain dict (for manifests and results files)."""
        return asdict(self)


PROMPT_TEMPLATES: dict[str, PromptTemplate] = {
    # the paper's template (system + instruction suffix)
    "cures": PromptTemplate(name="cures", system=PAPER_SYSTEM_PROMPT, user_suffix=PAPER_USER_SUFFIX),
    # same user turn without the system message (for chat templates that inject their own)
    "cures_no_system": PromptTemplate(name="cures_no_system", user_suffix=PAPER_USER_SUFFIX),
    # the bare problem as the only user message
    "plain": PromptTemplate(name="plain"),
}


def get_template(name: str) -> PromptTemplate:
    """Return the named template from :data:`PROMPT_TEMPLATES`.

    Raises:
        ValueError: If ``name`` is unknown; the message lists the known names.
    """
    return lookup(PROMPT_TEMPLATES, name, "prompt template")
