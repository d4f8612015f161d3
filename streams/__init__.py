"""harvest-monitor transport: ticks, venue feeds, the simulated exchange, the bus. No taxes here."""
