"""Feed providers: binance and pyth (live markets), replay and synthetic (offline).

Import a provider module directly (``crunch_engine.feeds.providers.replay``) or go
through ``crunch_engine.feeds.registry``; this package imports nothing eagerly so a
missing optional SDK never breaks the others.
"""
