"""Harvest execution: alert-only (default), paper or live (ccxt), through durable intents."""
