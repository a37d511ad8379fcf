"""The intake's sensor tick fixture, shared with the reliability tests."""

from jobs_orchestration_tests.intake.conftest import tick

__all__ = ["tick"]
