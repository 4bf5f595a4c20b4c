"""Claim statements: price each loaded act and pharmacy line (adjudicate.py, with the rates of
rates.py), then issue one statement per insured and processing day, routed to e-mail or paper
and, with the insured's consent, copied to their complementary insurer (issue.py). build.py
does both in one transaction."""

from edihub.statements.adjudicate import Adjudication, adjudicate
from edihub.statements.build import Build, build_statements
from edihub.statements.issue import MONACO, Issue, issue_day, monaco_today

__all__ = [
    "MONACO",
    "Adjudication",
    "Build",
    "Issue",
    "adjudicate",
    "build_statements",
    "issue_day",
    "monaco_today",
]
