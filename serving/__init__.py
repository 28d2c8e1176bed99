"""Serving: the inspection service, its engine, records, and offline batch inspection."""
