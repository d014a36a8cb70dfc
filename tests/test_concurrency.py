"""Parallel requests against the live site: no duplicate imports, no "database is locked"."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from demo.media import wav_bytes
from eid.models import Handoff, ReturnedExport

from test_worker import login, post_form

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_confirms_of_one_share_page_make_one_import(live_server, sandbox, make_recording, alice):
    recording = make_recording(alice, "Show", mix=("alice/show.wav", wav_bytes(0.2), "audio/wav"))
    share = sandbox.create_share(partner=settings.DESCRIPT_PARTNER_DRIVE_ID, source=str(recording.source_id),
                                 media_bytes=1000, render_seconds=600)
    sessions = [login(live_server.url, "alice", "alice-pass-1234") for _ in range(6)]

    def confirm(session):
        return post_form(session, live_server.url, "/descript/import/new", {"url": share["share_url"], "title": "T"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(confirm, sessions))
    assert all(a.status_code == 200 for a in answers), [a.status_code for a in answers]
    assert ReturnedExport.objects.count() == 1
    assert len({a.url for a in answers}) == 1  # every double-click lands on the same status page


def test_parallel_clicks_all_succeed_and_are_all_recorded(live_server, sandbox, make_recording, alice):
    recording = make_recording(alice, "Show", mix=("alice/show.wav", wav_bytes(0.2), "audio/wav"))
    sandbox.add_fault(path="/v1/edit_in_descript/schema", latency_ms=50)
    sessions = [login(live_server.url, "alice", "alice-pass-1234") for _ in range(8)]

    def click(session):
        return post_form(session, live_server.url, f"/descript/edit/{recording.pk}/mix/", allow_redirects=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(click, sessions * 2))
    assert [a.status_code for a in answers] == [302] * 16
    assert len({a.headers["Location"] for a in answers}) == 16
    assert Handoff.objects.filter(outcome="ok").count() == 16
