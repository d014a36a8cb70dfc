from django.apps import AppConfig


class PodcastsConfig(AppConfig):
    name = "second_site.podcasts"
    label = "podcasts"
