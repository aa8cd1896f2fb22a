"""Self-contained HTML report of a fitted CLV analysis (``build_report``; template in ``template.html``)."""

from bayesclv.report.builder import Report, build_report

__all__ = ["Report", "build_report"]
