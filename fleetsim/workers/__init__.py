"""Running one fleet in several worker processes of this machine (`fleetsim spawn --workers`)."""
