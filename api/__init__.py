"""The HTTP API: the aiohttp handlers and the live streams."""
