"""Domain logic of the docs service: experiment reports and model cards."""

from mlmesh_docs.reports import ReportContext, ReportContextError, render_reports

__all__ = ["ReportContext", "ReportContextError", "render_reports"]
