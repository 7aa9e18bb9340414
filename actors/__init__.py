"""pykka actors: each owns its state and talks to the others only by messages."""
