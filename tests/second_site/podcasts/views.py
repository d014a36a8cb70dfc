from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from .models import Episode


@login_required
def episodes(request: HttpRequest) -> HttpResponse:
    mine = Episode.objects.filter(owner=request.user).prefetch_related("cuts").order_by("slug")
    return render(request, "podcasts/episodes.html", {"episodes": mine})


@login_required
def episode(request: HttpRequest, slug: str) -> HttpResponse:
    """One episode: its button and the auto-edit panel (one panel per page, as eid.jobs expects)."""
    mine = get_object_or_404(Episode, slug=slug, owner=request.user)
    return render(request, "podcasts/episode.html", {"episode": mine})
