"""Tests of the matching rmbench area."""
