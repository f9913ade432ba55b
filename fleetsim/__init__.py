"""fleetsim: load-test OCPP-J central systems with fleets of virtual charge points.

The public API; `fleetsim.cli` is a thin layer over it.
"""

from fleetsim._api import RampResult, RunResult, ramp, run, run_ramp, spawn
from fleetsim._version import __version__
from fleetsim.behaviour.distributions import Distribution
from fleetsim.behaviour.profile import (
    Behaviour,
    Profile,
    Sessions,
    estimate_rate,
    event_kind,
    load_profile,
    resolve_profile,
    shipped_profiles,
)
from fleetsim.behaviour.schedule import Backoff
from fleetsim.capacity import RampPlan
from fleetsim.certs import CertificateAuthority, Pki, issue_pki
from fleetsim.charger.core import ChargerCore, ChargerSpec
from fleetsim.config import (
    RunConfig,
    Segment,
    build_config,
    parse_duration,
    parse_listen,
    parse_range,
    parse_rate,
    parse_segment,
    parse_workers,
)
from fleetsim.csms.answers_16 import CsmsStats
from fleetsim.csms.config import CsmsConfig, Delay, parse_delay
from fleetsim.csms.process import run_csms
from fleetsim.csms.server import CsmsServer, serve_csms
from fleetsim.errors import (
    ConfigError,
    FleetsimError,
    LocalProtocolError,
    ProtocolError,
)
from fleetsim.metrics import FleetOutcome, Metrics
from fleetsim.outputs import Written, check_output, write_or_fall_back
from fleetsim.progress import Progress, ProgressMode
from fleetsim.report import (
    SCHEMA,
    Comparison,
    Report,
    check_report,
    compare,
    format_comparison,
    format_step,
    format_summary,
    load_report,
    merge_reports,
    parse_gate,
    render_html,
    report_schema,
    write_html,
    write_report,
)
from fleetsim.thresholds import Threshold, Verdict, evaluate, junit_xml, parse_threshold
from fleetsim.transport import TRANSPORTS

__all__ = [
    "SCHEMA",
    "TRANSPORTS",
    "Backoff",
    "Behaviour",
    "CertificateAuthority",
    "ChargerCore",
    "ChargerSpec",
    "Comparison",
    "ConfigError",
    "CsmsConfig",
    "CsmsServer",
    "CsmsStats",
    "Delay",
    "Distribution",
    "FleetOutcome",
    "FleetsimError",
    "LocalProtocolError",
    "Metrics",
    "Pki",
    "Profile",
    "Progress",
    "ProgressMode",
    "ProtocolError",
    "RampPlan",
    "RampResult",
    "Report",
    "RunConfig",
    "RunResult",
    "Segment",
    "Sessions",
    "Threshold",
    "Verdict",
    "Written",
    "__version__",
    "build_config",
    "check_output",
    "check_report",
    "compare",
    "estimate_rate",
    "evaluate",
    "event_kind",
    "format_comparison",
    "format_step",
    "format_summary",
    "issue_pki",
    "junit_xml",
    "load_profile",
    "load_report",
    "merge_reports",
    "parse_delay",
    "parse_duration",
    "parse_gate",
    "parse_listen",
    "parse_range",
    "parse_rate",
    "parse_segment",
    "parse_threshold",
    "parse_workers",
    "ramp",
    "render_html",
    "report_schema",
    "resolve_profile",
    "run",
    "run_csms",
    "run_ramp",
    "serve_csms",
    "shipped_profiles",
    "spawn",
    "write_html",
    "write_or_fall_back",
    "write_report",
]
