"""The detector table: name → class, in evaluation order. Adding a detector is adding a
module and a line here; no other detector changes (SPEC §5)."""

from __future__ import annotations

from node.detectors.account_attack import AccountAttack
from node.detectors.authentication_abuse import AuthenticationAbuse
from node.detectors.bad_user_agent import BadUserAgent
from node.detectors.base import Detector, Finding, Param
from node.detectors.brute_force import BruteForce
from node.detectors.business_logic import BusinessLogic
from node.detectors.card_testing import CardTesting
from node.detectors.consumption import ExcessiveRequestConsumption, ExcessiveResponseConsumption
from node.detectors.credential_stuffing import CredentialStuffing
from node.detectors.datacenter_agent import DatacenterAgent
from node.detectors.fake_accounts import FakeAccounts
from node.detectors.fake_good_bot import FakeGoodBot
from node.detectors.forced_browsing import ForcedBrowsing
from node.detectors.human_actions import HumanActions
from node.detectors.ip_rotation import IpRotation
from node.detectors.key_guessing import KeyGuessing
from node.detectors.low_frequency_stuffing import LowFrequencyStuffing
from node.detectors.otp_guessing import OtpGuessing
from node.detectors.outdated_browser import OutdatedBrowser
from node.detectors.persistent_ato import PersistentAto
from node.detectors.query_abuse import QueryAbuse
from node.detectors.request_interval import RequestInterval
from node.detectors.request_rate import RequestRate
from node.detectors.request_uniqueness import RequestUniqueness
from node.detectors.response_time_anomaly import ResponseTimeAnomaly
from node.detectors.session_rotation import SessionRotation
from node.detectors.sms_pumping import SmsPumping
from node.detectors.suspicious_behavior import SuspiciousBehavior
from node.detectors.wide_scope import WideScope

DETECTORS: tuple[type[Detector], ...] = (
    BadUserAgent,
    ForcedBrowsing,
    OutdatedBrowser,
    RequestRate,
    RequestInterval,
    RequestUniqueness,
    QueryAbuse,
    WideScope,
    SessionRotation,
    BusinessLogic,
    ResponseTimeAnomaly,
    ExcessiveRequestConsumption,
    ExcessiveResponseConsumption,
    AuthenticationAbuse,
    CredentialStuffing,
    LowFrequencyStuffing,
    IpRotation,
    PersistentAto,
    BruteForce,
    AccountAttack,
    OtpGuessing,
    SmsPumping,
    CardTesting,
    FakeAccounts,
    KeyGuessing,
    HumanActions,
    FakeGoodBot,
    DatacenterAgent,
    SuspiciousBehavior,
)
REGISTRY: dict[str, type[Detector]] = {d.name: d for d in DETECTORS}

__all__ = ["DETECTORS", "REGISTRY", "Detector", "Finding", "Param"]
