"""Tests of the Syscom RESS integration and of its ress_bms library."""
