"""Matching: new items against all department rules, once each, into alerts and tickets."""
