"""Measurements. Each module measures one kind of quantity and returns plain data."""
