"""The `fleetsim.report/1` report: building it, reading it back, the summary, HTML, merging
and comparing reports. Nothing here imports trio, the transport or the fleet."""

from fleetsim.report._build import (
    SCHEMA,
    build_report,
    default_report_path,
    peak_connects,
    serialisable_report,
    window_report,
    write_report,
)
from fleetsim.report._compare import (
    GATE_GRAMMAR,
    Comparison,
    Gate,
    compare,
    format_comparison,
    load_report,
    parse_gate,
)
from fleetsim.report._html import percentile_curve, render_html, write_html
from fleetsim.report._merge import PART_CONFIG_KEYS, merge_reports
from fleetsim.report._model import (
    CONVERTER,
    OPTIONAL_SECTIONS,
    Report,
    check_report,
    structure_report,
    unstructure_report,
)
from fleetsim.report._schema import report_schema
from fleetsim.report._summary import broken, format_step, format_summary

__all__ = [
    "CONVERTER", "GATE_GRAMMAR", "OPTIONAL_SECTIONS", "PART_CONFIG_KEYS", "SCHEMA",
    "Comparison", "Gate", "Report",
    "broken", "build_report", "check_report", "compare", "default_report_path",
    "format_comparison", "format_step", "format_summary", "load_report", "merge_reports",
    "parse_gate", "peak_connects", "percentile_curve", "render_html", "report_schema",
    "serialisable_report", "structure_report", "unstructure_report", "window_report",
    "write_html", "write_report",
]
