"""Registers the sentiment platform's pages with Airflow.

* ``/sentiment/leaderboard`` (a FastAPI app, see :mod:`sentiment_platform.views`, behind Airflow's login), linked
  from the UI's menu;
* a menu link to the live dashboard (``python -m serving.dashboard``, at ``dashboard_host:dashboard_port``);
* a menu link to the BentoML service's API docs when ``SENTIMENT_SERVICE_URL`` is set (``make up`` sets it).

Hooks and sensors are plain modules (``sentiment_platform.hooks``, ``sentiment_platform.sensors``): Airflow 3
imports them from ``plugins/`` on ``sys.path``; they need no registration.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sentiment_platform.views import app as reports_app


def _external_views() -> list[dict]:
    views = [{"name": "Leaderboard", "href": "/sentiment/leaderboard", "url_route": "sentiment-leaderboard",
              "category": "Sentiment", "destination": "nav"}]
    from ml.settings import get_settings

    settings = get_settings()
    host = settings.dashboard.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else f"[{host}]" if ":" in host else host
    views.append({"name": "Dashboard", "href": f"http://{host}:{settings.dashboard.port}/",
                  "url_route": "sentiment-dashboard", "category": "Sentiment", "destination": "nav"})
    service = settings.service.base_url if settings.is_set("service_url") else None
    if service:
        views.append({"name": "Service API docs", "href": service.rstrip("/") + "/",
                      "url_route": "sentiment-service-docs", "category": "Sentiment", "destination": "nav"})
    return views


class SentimentPlatformPlugin(AirflowPlugin):
    name = "sentiment_platform"
    fastapi_apps = [{"app": reports_app, "url_prefix": "/sentiment", "name": "Sentiment reports"}]
    external_views = _external_views()
