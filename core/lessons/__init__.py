"""The learning path: six lessons from linear regression to ablation studies.

Lessons 1–3 train a small model step by step (``core.lessons.training``); lessons 4–6
open the workbench on a shipped model. Each has a Markdown text in
``resources/lessons/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from core.paths import resource_path


@dataclass(frozen=True)
class Lesson:
    """One step of the path.

    ``trainer`` names a trainer in :mod:`core.lessons.training` (lessons 1–3);
    ``model``/``layer`` open the workbench (lessons 4–6).
    """

    number: int
    key: str
    title: str
    trainer: Optional[str] = None
    model: Optional[str] = None
    layer: Optional[str] = None

    def text(self) -> str:
        """The lesson's Markdown."""
        return resource_path("lessons", f"{self.number}_{self.key}.md").read_text(
            encoding="utf-8")


LESSONS: tuple[Lesson, ...] = (
    Lesson(1, "linear_regression", "Linear regression", trainer="linear"),
    Lesson(2, "logistic_regression", "Logistic regression", trainer="logistic"),
    Lesson(3, "one_hidden_layer", "A network with one hidden layer", trainer="mlp"),
    Lesson(4, "probing_a_cnn", "Probing a CNN", model="digits_cnn", layer="conv1"),
    Lesson(5, "attention", "Attention", model="induction_transformer", layer="block0.attn"),
    Lesson(6, "ablation_studies", "Ablation studies", model="digits_cnn", layer="conv2"),
)


def lesson(number: int) -> Lesson:
    for item in LESSONS:
        if item.number == number:
            return item
    raise KeyError(f"There is no lesson {number}; they are numbered 1–{len(LESSONS)}.")
