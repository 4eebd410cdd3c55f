"""Keep a credential off the screen while it is typed.

A student may type `AUTH PLAIN <base64>` by hand, or answer a 334 password challenge in
base64 in manual mode. The line still goes to the server exactly as typed; only what the
terminal shows is masked, character for character, so editing keys keep working.
"""

from __future__ import annotations

import re

from prompt_toolkit.layout.processors import (
    Processor,
    Transformation,
    TransformationInput,
)

#: `AUTH <mechanism> <initial response>`: everything after the mechanism is the secret.
_INITIAL_RESPONSE = re.compile(r"^(\s*auth\s+\S+\s+)(\S.*)$", re.IGNORECASE)


def masked_line(text: str) -> str:
    """`text` as shown: an AUTH initial response becomes asterisks of the same length."""
    match = _INITIAL_RESPONSE.match(text)
    if match is None:
        return text
    return match.group(1) + "*" * len(match.group(2))


class MaskInitialResponse(Processor):
    """Shows an AUTH line's initial response as asterisks while it is typed."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        text = "".join(fragment[1] for fragment in ti.fragments)
        masked = masked_line(text)
        if masked == text:
            return Transformation(ti.fragments)
        style = ti.fragments[0][0] if ti.fragments else ""
        return Transformation([(style, masked)])
