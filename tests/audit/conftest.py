"""The service without a background answer builder: tests build answers when they choose."""

from tests.lookup.test_prebuilt import client

__all__ = ["client"]
