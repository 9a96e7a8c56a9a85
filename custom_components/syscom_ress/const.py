"""Constants of the Syscom RESS battery integration."""

from typing import Final

DOMAIN: Final = "syscom_ress"
