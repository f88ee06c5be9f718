"""Business decisions of the four pools: pure functions from events and state to actions."""
