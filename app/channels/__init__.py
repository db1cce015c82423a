"""The channels beyond voice: how customers reach the center and how it answers them."""
