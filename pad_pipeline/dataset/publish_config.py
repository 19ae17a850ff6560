"""The `publish:` section of an annotation manifest: what `pad publish` states and how it uploads.

It lives in the manifest (and so in the build's resolved `OUT/config.yaml`) beside what built the data,
is excluded from the annotation config hash (changing a licence never invalidates a build), and every
field can be overridden by a `pad publish` flag. The licence is the publisher's to state: when none is
given the card has no `license` metadata and says, in words, that no licence was stated.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from pad_pipeline.core.config import ConfigModel


class PublishConfig(ConfigModel):
    pretty_name: str | None = Field(None, description="the dataset's display name on the Hub")
    license: str | None = Field(None, description="a Hub licence id (e.g. cc-by-4.0), or 'other' with "
                                                  "license_name and license_link; unset: none is claimed")
    license_name: str | None = Field(None, description="with license: other, an id for the licence")
    license_link: str | None = Field(None, description="with license: other, a URL or a file in the repo")
    source: str | None = Field(None, description="where the images and captions come from, and their terms")
    citation: str | None = Field(None, description="BibTeX to cite for this data (the source corpus, the build)")
    max_files_per_commit: int = Field(50, ge=1, le=1000, description="files per Hub commit (the Hub "
                                                                     "recommends fewer than 100)")
    max_bytes_per_commit: int = Field(2 * 2**30, ge=1, description="bytes per Hub commit (work lost to an "
                                                                   "interruption, memory for remote builds)")

    @model_validator(mode="after")
    def _custom_licence(self) -> "PublishConfig":
        if (self.license_name or self.license_link) and self.license not in (None, "other"):
            raise ValueError("publish.license_name and license_link go with license: other")
        if (self.license_name or self.license_link) and self.license is None:
            self.license = "other"
        return self
