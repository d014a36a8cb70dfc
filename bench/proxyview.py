"""The floor for any Django site: POST the same schema to the same Descript and redirect.

bench/click_load compares the click (POST /descript/edit/<ref>/<option>/) with this view, served by
the same server processes behind the same middleware (session, CSRF, authentication, CSP...):

- login required, POST only, CSRF checked by the middleware, never cached: as the click;
- the user's item looked up through the site's own adapter (the owner check every site needs:
  one query for the recording and its files, exactly the click's);
- one fresh SigV4 GET URL per file and request, with the same boto3 client (48 hours), because a
  site must sign at the click: a URL signed once would be handed to every later click and die
  with its lifetime. (`?sign=once` reuses URLs signed at the first request instead: printed as
  an extra line, to show what signing costs, not used for the ratio);
- the body built by eid.schema.build_request, POSTed with one keep-alive requests.Session
  (proxies not re-read per call, as eid's client), then a 302 to the link Descript returned.

What it leaves out is what eid adds on top: the per-user throttle, the HEAD check of every file,
the Handoff row, the hand-back of pooled database connections, the retry policy and budget.
"""

from __future__ import annotations

import json

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from requests.adapters import HTTPAdapter

from eid import storage
from eid.content import get_adapter
from eid.schema import SchemaFile, build_request

_session = requests.Session()
_session.trust_env = False
_adapter = HTTPAdapter(pool_connections=4, pool_maxsize=128, max_retries=0)
_session.mount("http://", _adapter)
_session.mount("https://", _adapter)
_session.headers.update({"User-Agent": "PartnerBackend/1.0 (+Edit in Descript)", "Accept": "application/json"})

_signed_once: dict[tuple[str, str], list[SchemaFile]] = {}


def _sign(content) -> list[SchemaFile]:
    client = storage.s3_client()
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    return [
        SchemaFile(
            uri=client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f.key},
                                              ExpiresIn=settings.EID_PRESIGN_TTL_SECONDS),
            name=f.name, start_offset=f.start_offset,
        )
        for f in content.files
    ]


@never_cache
@login_required
@require_POST
def floor(request: HttpRequest, ref: str, option: str) -> HttpResponse:
    content = get_adapter().get_content(request.user, ref, option)
    if content is None:
        raise Http404("No such recording")
    if request.GET.get("sign") == "once":
        files = _signed_once.get((ref, option)) or _signed_once.setdefault((ref, option), _sign(content))
    else:
        files = _sign(content)
    body = build_request(drive_id=settings.DESCRIPT_PARTNER_DRIVE_ID, source_id=content.source_id,
                         files=files, multitrack=content.multitrack)
    try:
        answer = _session.post(
            f"{settings.DESCRIPT_API_BASE}/edit_in_descript/schema",
            data=json.dumps(body, separators=(",", ":")),
            headers={"Authorization": f"Bearer {settings.DESCRIPT_API_TOKEN}", "Content-Type": "application/json"},
            timeout=(settings.DESCRIPT_CONNECT_TIMEOUT, settings.DESCRIPT_READ_TIMEOUT),
        )
    except requests.RequestException:
        return HttpResponse("Descript could not be reached", status=502, content_type="text/plain")
    if answer.status_code != 201:
        return HttpResponse(f"Descript answered {answer.status_code}", status=502, content_type="text/plain")
    return HttpResponseRedirect(answer.json()["url"])
