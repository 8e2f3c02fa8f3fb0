"""The web UI: server-rendered pages for clinicians and patients, served by the FastAPI app.

Jinja2 templates, htmx for partial updates (vendored: ``static/vendor/htmx.min.js``, htmx.org
2.0.11, 0BSD) and Plotly charts (``plotly.min.js`` from the installed ``plotly`` package), so
nothing is fetched from the internet at run time. Mount it with::

    app.include_router(make_router(records=..., auth=..., knowledge=..., clock=...,
                                   calendar=assessment_calendar))
"""

from b12plan.web.routes import make_router

__all__ = ["make_router"]
