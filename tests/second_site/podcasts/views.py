from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Episode


@login_required
def episodes(request: HttpRequest) -> HttpResponse:
    mine = Episode.objects.filter(owner=request.user).prefetch_related("cuts").order_by("slug")
    return render(request, "podcasts/episodes.html", {"episodes": mine})
