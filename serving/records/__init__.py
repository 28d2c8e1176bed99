"""What the service keeps: inspection records, API keys, model loads, baselines and alarms, in its database."""
