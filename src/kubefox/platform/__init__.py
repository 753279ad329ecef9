"""The embedded platform: every role of KubeFox in one process tree, for laptops and tests."""

from kubefox.platform.embedded import EmbeddedPlatform
from kubefox.platform.settings import PlatformSettings

__all__ = ["EmbeddedPlatform", "PlatformSettings"]
