"""Review comments on an agent's diff (a file, a line or lines, what should change), as one prompt."""

from __future__ import annotations

import re

from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInput
from .agents import AgentRef
from .words import _Request


class ReviewComment(_Request):
    """One review comment on the agent's diff: a file, a line (or lines) of it, and what should change."""

    path: str = Field(description="a file of the agent's diff, relative to the project")
    line: int = Field(ge=1, description="the line (1-based) of the file as the agent left it")
    end_line: int | None = Field(None, ge=1, description="the last line of a range (default: line)")
    comment: str = Field(description="what should change there")

    @field_validator("path", "comment")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty: give the file and say what should change")
        return v

    @model_validator(mode="after")
    def _range(self) -> "ReviewComment":
        if self.end_line is not None and self.end_line < self.line:
            raise ValueError(f"end_line {self.end_line} is before line {self.line}: give the range first to last")
        return self


_COMMENT_LINE = r"^(?P<path>[^\n]+?):(?P<line>\d+)(?:-(?P<end>\d+))?:(?P<comment>.*)$"


def review_comment(text: str) -> ReviewComment:
    """``src/app.py:12:use a constant`` or ``src/app.py:10-14:split this`` as a comment (how the command line and
    the notebook write one); InvalidInput naming the form otherwise."""
    found = re.match(_COMMENT_LINE, text.strip(), re.S)
    if found is None or not found["comment"].strip():
        raise InvalidInput(f"'{text}' is not a review comment of the form PATH:LINE:COMMENT",
                           "e.g. 'src/app.py:12:use a constant' or 'src/app.py:10-14:split this function'")
    try:
        return ReviewComment(path=found["path"], line=int(found["line"]),
                             end_line=int(found["end"]) if found["end"] else None, comment=found["comment"].strip())
    except ValidationError as e:  # e.g. a range given last to first
        msg = str(e.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInput(f"review comment '{text}': {msg}", "give lines as FIRST-LAST, counting from 1") from None


class RequestChangesRequest(AgentRef):
    comments: list[ReviewComment] = Field(
        description="review comments on the agent's diff: each a path, line (end_line) and comment")
    note: str | None = Field(None, description="a general note sent after the comments")

    @field_validator("comments")
    @classmethod
    def _some(cls, v: list[ReviewComment]) -> list[ReviewComment]:
        if not v:
            raise ValueError("no comments: give at least one (path, line, comment); for a plain message use prompt")
        return v
