"""The tax side: jurisdiction rule packs, the value of a loss, wash-sale windows, summaries."""
