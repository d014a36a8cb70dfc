"""Template tags for a partner's pages: `{% load descript %}`.

    {% edit_in_descript_button item option %}   beside each download option
    {% descript_help_url %}                     Descript's help article, from settings
"""

from __future__ import annotations

from typing import Any

from django import template

from ..conf import eid_settings
from ..content import get_adapter

register = template.Library()


@register.inclusion_tag("eid/button.html")
def edit_in_descript_button(item: Any, option: str) -> dict[str, Any]:
    """The button for one download option of `item`; nothing where Descript cannot import it."""
    content = get_adapter().content_for(item, str(option)) if item is not None else None
    return {"content": content if content is not None and content.importable else None}


@register.simple_tag
def descript_help_url() -> str:
    return str(eid_settings.DESCRIPT_HELP_URL)
