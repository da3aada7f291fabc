"""Online behaviour agents (SAC) and the shipped behaviour policies behind replica datasets."""
