"""Numbers a resident typed, kept server-side while their form goes back for fixing.

A form sent back (an error elsewhere, or a warning to confirm) never carries a full ID or
phone number: the page shows the masked number and an opaque draft reference, and an empty
field on the next POST takes the kept value. Drafts are sealed with the field cipher (bound
to the link and the draft id) and expire with the form's CSRF value.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.masking import mask_id_number, mask_phone
from bot.rtypes import text
from collect import tokens
from collect.crypto import FieldCryptoError
from collect.deps import CollectDeps
from collect.formpage import KIND_INPUTS
from collect.models import RecordKind
from collect.validate import Issue, Severity

_MASKS = {"id_number": mask_id_number, "phone": mask_phone, "legal_rep_phone": mask_phone}


@dataclass(frozen=True, slots=True)
class Draft:
    id: str
    values: Mapping[str, str]

    def masked(self) -> dict[str, str]:
        return {name: _MASKS.get(name, mask_phone)(value) for name, value in self.values.items()}


def _aad(token: str) -> str:
    return f"form-draft:{tokens.digest(token)}"


async def save_draft(deps: CollectDeps, token: str, kind: RecordKind, form: Mapping[str, str],
                     issues: Sequence[Issue]) -> Draft | None:
    """Keep the secret fields that have no error (a wrong number must be typed again)."""
    wrong = {i.field for i in issues if i.severity is Severity.ERROR}
    keep = {i.name: form[i.name] for i in KIND_INPUTS[kind]
            if i.secret and form.get(i.name) and i.name not in wrong}
    if not keep:
        return None
    draft = Draft(secrets.token_urlsafe(16), keep)
    sealed = deps.cipher.seal(json.dumps(keep), _aad(token), draft.id)
    await deps.redis.set(deps.keys.form_draft(draft.id), sealed,
                         px=deps.clock.real_ms(tokens.CSRF_MAX_AGE))
    return draft


async def load_draft(deps: CollectDeps, token: str, draft_id: str,
                     form: Mapping[str, str]) -> dict[str, str]:
    """The kept values for the fields left empty in `form` (nothing for a foreign draft)."""
    if not draft_id:
        return {}
    sealed = text(await deps.redis.get(deps.keys.form_draft(draft_id[:64])))
    if not sealed:
        return {}
    try:
        kept: dict[str, str] = json.loads(deps.cipher.open(sealed, _aad(token), draft_id))
    except (FieldCryptoError, ValueError):
        return {}  # another link's draft, or a retired key: the resident types it again
    return {name: value for name, value in kept.items() if not form.get(name)}


async def drop_draft(deps: CollectDeps, draft_id: str) -> None:
    if draft_id:
        await deps.redis.delete(deps.keys.form_draft(draft_id[:64]))
