"""What the auto-edit machine tells the rest of the site, without knowing who listens.

`auto_edit_finished` is sent once per auto-edit, after the transaction that made it final
(done, failed or cancelled) commits, with `auto_edit` (the row). eid.webhooks turns it into
`auto_edit.completed` / `auto_edit.failed` events when installed.
"""

from django.dispatch import Signal

auto_edit_finished = Signal()
