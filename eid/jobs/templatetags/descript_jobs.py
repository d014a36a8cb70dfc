"""Template tags for a partner's pages: `{% load descript_jobs %}`.

    {% auto_edit_panel item %}        beside a recording's download options: start an automatic
                                      edit (presets or free text) and list this item's auto-edits
    {% auto_edit_panel item ref %}    the same, naming the item's id when it is not `item.pk`
"""

from __future__ import annotations

from typing import Any

from django import template

from ..forms import AutoEditForm
from ..models import AutoEdit

register = template.Library()
LISTED = 10


@register.inclusion_tag("eid_jobs/panel.html", takes_context=True)
def auto_edit_panel(context: template.Context, item: Any, ref: Any = None) -> dict[str, Any]:
    """The form and the signed-in user's auto-edits of `item` (its `ref` is the adapter's id:
    by default `item.pk`, as in the buttons' URLs)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    item_ref = str(ref if ref is not None else getattr(item, "pk", ""))
    auto_edits: list[AutoEdit] = []
    if user is not None and user.is_authenticated and item_ref:
        auto_edits = list(AutoEdit.objects.filter(user=user, item_ref=item_ref).order_by("-created_at")[:LISTED])
    return {"ref": item_ref, "form": AutoEditForm(auto_id="ae_%s"), "auto_edits": auto_edits,
            "csrf_token": context.get("csrf_token"), "request": request}
