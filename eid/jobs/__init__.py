"""Descript's jobs API: import, Underlord agent, publish, and the auto-edits built on them.

Install as "eid.jobs" (after "eid"). Layers, lowest first:

    client.py    JobsClient: every jobs endpoint, typed answers (pydantic), typed JobsError
    budget.py    one rate budget per Descript token, shared by every process (a database row)
    cadence.py   when to poll a job next (pure)
    links.py     media given by people: Drive/Dropbox links, https URLs, bucket keys (pure)
    models.py    AutoEdit, JobStep, AutoEditBatch, PromptPreset, DescriptBudget
    machine.py   the auto-edit state machine (the rows are the truth; tasks only nudge)
    tasks.py     the task that advances an auto-edit; the sweep of stale ones
    callbacks.py Descript's job callbacks (a hint, confirmed with GET /jobs/{id})
    views.py, api.py, admin.py, management/commands/descript.py: the ways in
"""
