"""Settings of the categories (env prefix `JOBTRAIL_CATEGORIES_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobtrail.categories.classifier import Thresholds


class CategorySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOBTRAIL_CATEGORIES_", frozen=True, extra="ignore"
    )

    file: Path | None = Field(
        default=None,
        description="The categories YAML; unset: the starter file shipped with jobtrail",
    )
    # Calibrated by `make category-accuracy` on the half of tests/data/categories/labeled.tsv it
    # does not score (bench/category_accuracy.py prints the values it finds).
    min_score: float = Field(
        default=0.40, description="An error whose best category scores lower is uncategorized"
    )
    min_margin: float = Field(
        default=0.0,
        ge=0,
        description="An error whose best category leads the second by less is uncategorized",
    )
    lexical_weight: float = Field(
        default=0.2, ge=0, description="Weight of the words an error shares with a category"
    )
    background: bool = Field(
        default=True,
        description="Weigh each error's best category against the built-in background of bugs "
        "and bad input (jobtrail/categories/background.py)",
    )
    background_margin: float = Field(
        default=0.05,
        description="An error whose best category does not beat its cosine to the background "
        "by this much is uncategorized",
    )
    refresh_s: float = Field(
        default=5.0, gt=0, description="How old the served counts may get before a refresh"
    )

    def thresholds(self) -> Thresholds:
        return Thresholds(self.min_score, self.min_margin, self.lexical_weight,
                          self.background_margin if self.background else None)  # fmt: skip
